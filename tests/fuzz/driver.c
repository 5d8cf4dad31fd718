/* Runs a libFuzzer target without libFuzzer: every file named on the command line (the seed
 * corpus), then a fixed number of deterministic mutations of each, so the target runs as a
 * regression test in every build and under the sanitizers. Prints TAP. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../tap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		uint8_t buf[65536], mut[65536];
		size_t n;

		if (!f) {
			tap_ok(false, "open %s", argv[i]);
			continue;
		}
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		LLVMFuzzerTestOneInput(buf, n);
		for (int m = 0; m < 2000; m++) {
			size_t len = n;

			memcpy(mut, buf, n);
			/* Flip, overwrite, truncate or duplicate bytes. */
			for (int k = 0; k < 1 + (int)(next() % 4) && len; k++) {
				size_t at = next() % len;

				switch (next() % 4) {
				case 0:
					mut[at] ^= (uint8_t)(1u << (next() % 8));
					break;
				case 1:
					mut[at] = (uint8_t)next();
					break;
				case 2:
					len = at;
					break;
				default:
					if (len < sizeof(mut) - 1) {
						memmove(mut + at + 1, mut + at, len - at);
						len++;
					}
				}
			}
			LLVMFuzzerTestOneInput(mut, len);
		}
		tap_ok(true, "%s and 2000 mutations of it parse or are refused cleanly", argv[i]);
	}
	return tap_done();
}

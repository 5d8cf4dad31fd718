/* Runs a libFuzzer target without libFuzzer: every file named on the command line or found in
 * a directory named there (the seed corpus, read when the test runs, so a seed added needs no
 * reconfigure), then a fixed number of deterministic mutations of each, so the target runs as a
 * regression test in every build and under the sanitizers. Prints TAP. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

static void run(const char *path)
{
	static uint8_t buf[65536], mut[65536];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		tap_ok(false, "open %s", path);
		return;
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
	tap_ok(true, "%s and 2000 mutations of it parse or are refused cleanly", path);
}

static int regular(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		struct dirent **names;
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0 || !S_ISDIR(st.st_mode)) {
			run(argv[i]);
			continue;
		}
		n = scandir(argv[i], &names, regular, alphasort);
		if (!tap_ok(n > 0, "%s holds seeds", argv[i]))
			continue;
		for (int k = 0; k < n; k++) {
			char path[4096];

			snprintf(path, sizeof(path), "%s/%s", argv[i], names[k]->d_name);
			run(path);
			free(names[k]);
		}
		free(names);
	}
	return tap_done();
}

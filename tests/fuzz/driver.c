/* Runs a libFuzzer target without libFuzzer: every file named on the command line or found in
 * a directory named there (the seed corpus, read when the test runs, so a seed added needs no
 * reconfigure), then a fixed number of deterministic mutations of each, so the target runs as a
 * regression test in every build and under the sanitizers. Each seed runs in a child, so a
 * crash or a failed check (check.h aborts) is that seed's "not ok" and the others still run.
 * Prints TAP. */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* The seed and its mutations: how many calls returned other than 0 (libFuzzer's "keep it"). */
static int mutate(const uint8_t *buf, size_t n)
{
	static uint8_t mut[65536];
	int bad = LLVMFuzzerTestOneInput(buf, n) != 0;

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
		bad += LLVMFuzzerTestOneInput(mut, len) != 0;
	}
	return bad;
}

static void run(const char *path)
{
	static uint8_t buf[65536];
	FILE *f = fopen(path, "rb");
	int status = -1;
	pid_t pid;
	size_t n;

	if (!f) {
		tap_ok(false, "open %s", path);
		return;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* Mutations of its own per seed (FNV-1a of its name), the same in every run. */
		for (const char *p = path; *p; p++)
			rng = (rng ^ (uint8_t)*p) * 0x100000001b3ull;
		rng |= 1;
		_exit(mutate(buf, n) > 0 ? 1 : 0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid) {
		tap_ok(false, "%s: cannot run the target in a child: %m", path);
		return;
	}
	if (WIFSIGNALED(status))
		tap_ok(false, "%s or a mutation of it crashed the target (signal %d%s)", path,
			WTERMSIG(status),
			WTERMSIG(status) == SIGABRT ? ": a failed check, see stderr" : "");
	else
		tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			"%s and 2000 mutations of it parse or are refused cleanly (exit %d)", path,
			WIFEXITED(status) ? WEXITSTATUS(status) : -1);
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

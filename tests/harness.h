/* Real container runtimes for integration tests: a private dockerd or Podman API service started
 * and stopped by the test, offline images, containers, and cleaning up after all of them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Conventions: functions return 0 (or a CLI's exit status) and never print TAP results, only
 * "# " diagnostic lines, so a test keeps its own plan. Everything a runtime writes lives below a
 * directory the test owns (harness_init), and harness_fini() removes it. Needs root.
 */

int64_t harness_now_ms(void);
void harness_sleep_ms(long ms);
__attribute__((format(printf, 1, 2))) void harness_diag(const char *fmt, ...);

/* Create the test's private directory from template (ending in XXXXXX, modified in place) and
 * remember whether /var/lib/containers existed, since podman import writes a cache there
 * whatever --root says. -1 on failure. */
int harness_init(char *template);

/* Unmount what is left below the directory, remove it, and /var/lib/containers if we made it.
 * True if the directory is gone. */
bool harness_fini(void);

/* Run argv, stdout into out (trailing newlines cut; truncated to outsz - 1), stderr to ours,
 * stdin from /dev/null. The exit status, or -1. */
int harness_run(char *out, size_t outsz, const char *const argv[]);

/* Start a daemon with stdout and stderr into log; it gets SIGTERM if the test dies. */
pid_t harness_spawn(const char *const argv[], const char *log);

/* SIGTERM, wait up to 20 s, then SIGKILL; reaps it. Milliseconds it took; pid <= 0 is a no-op. */
int64_t harness_stop_pid(pid_t pid, const char *what);

/* GET /_ping over the Unix socket answers 200; wait_ping retries until `ms` pass or pid exits. */
bool harness_ping(const char *sock);
bool harness_wait_ping(const char *sock, pid_t pid, int64_t ms);

/* Kill (SIGKILL, by pid) every process whose command line mentions dir, and lazily unmount
 * every mount below dir, deepest first. How many of each were found. */
int harness_kill_leftovers(const char *dir);
int harness_umount_leftovers(const char *dir);

/* Write a random 64-hex ID. */
void harness_random_id(char out[65]);

/* ---- runtimes ---- */

enum harness_kind {
	HARNESS_DOCKER,
	HARNESS_PODMAN,
};

struct harness_runtime {
	enum harness_kind kind;
	const char *name;         /* "docker" or "podman": also the name kurad configures */
	const char *destroy_verb; /* the event a removal sends: "destroy" or "remove" */
	char dir[192];            /* this runtime's state, below the test's directory */
	char sock[256];           /* its API socket */
	char endpoint[300];       /* "unix:" + sock, for kura_runtime_new() and --runtime */
	char log[300];            /* the daemon's output */
	pid_t pid;                /* the API daemon, 0 while stopped */
	char skip[512];           /* why it could not start: print as the TAP skip reason */
	const char *cli[12];      /* argv prefix of the runtime's CLI, for harness_cli() */
	char arg[5][300];         /* storage behind cli[] and the daemon's argv */
};

/*
 * Start a private runtime with its state in <parent>/<name>: for Docker a dockerd with its own
 * data and exec roots and no networking (containers must use --network none, which
 * harness_container_run() does); for Podman its API service with private storage and a
 * containers.conf that suits these machines (runc, cgroupfs, file events; CONTAINERS_CONF is set
 * in this process's environment, so the CLI uses it too). 0 when it answers /_ping; otherwise
 * -1 with h->skip saying why, and nothing left running.
 */
int harness_runtime_start(struct harness_runtime *h, enum harness_kind kind, const char *parent);

/* Stop just the API daemon (the socket goes away; Podman's containers keep running, Docker's
 * are stopped with it), and start it again on the same state. 0 or -1. */
void harness_daemon_stop(struct harness_runtime *h);
int harness_daemon_start(struct harness_runtime *h);

/* Stop the daemon, then kill what it left running and unmount what it left mounted under h->dir.
 * The number of processes that had to be killed (0 for a clean stop). */
int harness_runtime_stop(struct harness_runtime *h);

/* Run the runtime's CLI with args (NULL-terminated): exit status, stdout into out. */
int harness_cli(const struct harness_runtime *h, char *out, size_t outsz, const char *const args[]);
#define HARNESS_CLI(h, out, ...)                                                                   \
	harness_cli(h, out, sizeof(out), (const char *const[]){ __VA_ARGS__, NULL })

/* ---- images and containers ---- */

struct harness_file {
	const char *src; /* a file on the host */
	const char *dst; /* its path inside the image, e.g. "kura" or "bin/probe" */
};

/* A tarball at `tar` of a root filesystem: busybox (static) as /bin/busybox with /bin/sh, plus
 * `files` (n of them), copied with their modes. Built in <tar>.d, which is removed again. 0, or
 * -1 (no busybox, a missing file). */
int harness_rootfs_tar(const char *tar, const struct harness_file *files, size_t n);

/* Import the tarball as image `tag`; its ID ("sha256:<64 hex>") into image_id. 0 or -1. */
int harness_image_import(const struct harness_runtime *h, const char *tar, const char *tag,
	char image_id[80]);

struct harness_container {
	const char *image;          /* tag or ID */
	const char *name;           /* NULL: the runtime picks one */
	const char *const *labels;  /* "k=v" each, NULL-terminated; NULL for none */
	const char *const *volumes; /* "host:container[:opts]" for -v */
	const char *const *tmpfs;   /* "path[:opts]" for --tmpfs */
	const char *const *args;    /* more options before the image */
	const char *const *cmd;     /* the command; NULL: /bin/sh -c "sleep 600" */
};

/* run -d --network none ...: the full ID into id. 0 or the CLI's status (-1: no valid ID). */
int harness_container_run(const struct harness_runtime *h, const struct harness_container *c,
	char id[65]);

/* exec (with -d if detach) cmd in container; output into out. The CLI's exit status. */
int harness_exec(const struct harness_runtime *h, const char *container, bool detach,
	const char *const cmd[], char *out, size_t outsz);

/* stop -t 0, and rm -f. The CLI's exit status. */
int harness_container_stop(const struct harness_runtime *h, const char *container);
int harness_container_rm(const struct harness_runtime *h, const char *container);

/* inspect -f fmt on a container (or image: what may be either), into out. The CLI's status. */
int harness_inspect(const struct harness_runtime *h, const char *what, const char *fmt, char *out,
	size_t outsz);

/* The container's image ID as "sha256:<hex>" (Podman's CLI prints bare hex), and its init pid
 * (0 if not running or unknown). */
int harness_container_image(const struct harness_runtime *h, const char *container,
	char image_id[80]);
pid_t harness_container_pid(const struct harness_runtime *h, const char *container);

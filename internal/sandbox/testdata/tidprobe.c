/* tidprobe: a stdio server that, as fast as a process can start, asks
   the kernel whether it may signal each thread of its parent (signal 0:
   the permission check without the signal) for 50 ms. Arguments are the
   parent's thread ids; the 300 after the largest are tried too, as the
   thread that started this process may be new. It prints "hit TID" for
   each thread it could signal, and "done". Static C, so that it runs
   within microseconds of its exec. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long since(const struct timespec *a) {
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (b.tv_sec - a->tv_sec) * 1000000000L + (b.tv_nsec - a->tv_nsec);
}

int main(int argc, char **argv) {
	pid_t pp = getppid(), tids[4096];
	int n = 0, max = pp, hit[4096] = {0};
	for (int i = 1; i < argc && n < 3796; i++) {
		tids[n] = atoi(argv[i]);
		if (tids[n] > max) max = tids[n];
		n++;
	}
	for (int t = max + 1; t <= max + 300; t++) tids[n++] = t;
	struct timespec a;
	clock_gettime(CLOCK_MONOTONIC, &a);
	while (since(&a) < 50000000L)
		for (int i = 0; i < n; i++)
			if (!hit[i] && syscall(SYS_tgkill, pp, tids[i], 0) == 0) hit[i] = 1;
	for (int i = 0; i < n; i++)
		if (hit[i]) printf("hit %d\n", tids[i]);
	printf("done\n");
	return 0;
}

/* alloc_double_free: a block freed twice, by its owner thread or by another thread, in every
 * tier (small, medium, large, huge). By default (HAKMEM_BAD_FREE=abort) the first double free
 * aborts. With HAKMEM_BAD_FREE=warn each is reported once and ignored, with =ignore ignored,
 * and either way the heap stays sound: no block handed out twice, no content damaged. Runs in a
 * forked child, so that a crash is reported here instead of ending the test. */
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alloc_test.h"

#define NAME "alloc_double_free"

static const size_t sizes[] = {16, 24, 100, 1000, 4000, 40000, 300 * KiB, 3 * MiB};
#define NSIZES (sizeof sizes / sizeof sizes[0])
#define FRESH 64 /* blocks allocated after each double free to check the heap */

static void *free_twice_thread(void *p) {
    free(p);
    free(p);
    return NULL;
}

static void *free_once_thread(void *p) {
    free(p);
    return NULL;
}

static void run_in_thread(void *(*fn)(void *), void *p) {
    pthread_t t;
    if (pthread_create(&t, NULL, fn, p) != 0 || pthread_join(t, NULL) != 0) _exit(2);
}

/* After a double free of a block of size n: many fresh blocks of that size, each filled
 * with its own pattern, must all be distinct and keep their content. */
static int heap_sound(size_t n, uint64_t salt) {
    static void *blk[FRESH];
    int bad = 0;
    for (int i = 0; i < FRESH; i++) {
        blk[i] = malloc(n);
        if (!blk[i]) _exit(3);
        hkt_fill(blk[i], n, hkt_mix(salt + (uint64_t)i));
    }
    for (int i = 0; i < FRESH; i++) {
        size_t at = hkt_verify(blk[i], n, hkt_mix(salt + (uint64_t)i));
        if (at != (size_t)-1) {
            fprintf(stderr, "FAIL size %zu: fresh block %d (%p) damaged at byte %zu: a block "
                    "handed out twice after a double free\n", n, i, blk[i], at);
            bad = 1;
        }
    }
    for (int i = 0; i < FRESH; i++) free(blk[i]);
    return bad;
}

/* The four ways a block gets freed twice; returns the number of double frees done. */
static int double_frees(int *bad) {
    int done = 0;
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        void *keep = malloc(n); /* a live neighbour that must survive everything below */
        if (!keep) _exit(3);
        hkt_fill(keep, n, 7 + s);

        void *p = malloc(n); /* owner, then owner */
        free(p);
        free(p);
        *bad |= heap_sound(n, 100 * s + 1);

        p = malloc(n); /* another thread, twice */
        run_in_thread(free_twice_thread, p);
        *bad |= heap_sound(n, 100 * s + 2);

        p = malloc(n); /* owner, then another thread */
        free(p);
        run_in_thread(free_once_thread, p);
        *bad |= heap_sound(n, 100 * s + 3);

        p = malloc(n); /* another thread, then the owner */
        run_in_thread(free_once_thread, p);
        free(p);
        *bad |= heap_sound(n, 100 * s + 4);
        done += 4;

        if (hkt_verify(keep, n, 7 + s) != (size_t)-1) {
            fprintf(stderr, "FAIL size %zu: a live block was damaged by double frees\n", n);
            *bad = 1;
        }
        free(keep);
    }
    return done;
}

int main(void) {
    hkt_init(NAME);
    if (hkt_system) {
        printf("  double free: skipped on the system allocator (glibc aborts, by design)\n");
        return hkt_finish(NAME);
    }
    const char *mode = getenv("HAKMEM_BAD_FREE"); /* abort (the default) | warn | ignore */
    int expect_abort = !mode || strcmp(mode, "abort") == 0;
    int expect_report = mode && strcmp(mode, "warn") == 0;
    int pipefd[2];
    REQUIRE(pipe(pipefd) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        alarm(60);
        close(pipefd[0]);
        int bad = 0;
        int saved_stderr = dup(2);
        char report_path[] = "/tmp/hk_double_free_XXXXXX";
        int report_fd = mkstemp(report_path);
        if (report_fd < 0) _exit(2);
        unlink(report_path);
        dup2(report_fd, 2); /* what the allocator says about the double frees */
        int done = double_frees(&bad);
        dup2(saved_stderr, 2);
        /* Count the allocator's reports (one line per bad free) for the parent. */
        char buf[1 << 16];
        ssize_t got = pread(report_fd, buf, sizeof buf - 1, 0);
        buf[got > 0 ? got : 0] = 0;
        int reported = 0;
        for (char *c = buf; (c = strstr(c, "hakmem: free(")) != NULL; c++) reported++;
        fputs(buf, stderr); /* the allocator's lines, for the log */
        int msg[3] = {bad, done, reported};
        if (write(pipefd[1], msg, sizeof msg) != (ssize_t)sizeof msg) _exit(2);
        _exit(bad ? 4 : 0);
    }
    close(pipefd[1]);
    int msg[3] = {0, 0, 0};
    ssize_t got = read(pipefd[0], msg, sizeof msg);
    int st = 0;
    REQUIRE(waitpid(pid, &st, 0) == pid, "waitpid");
    if (expect_abort) {
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT,
              "HAKMEM_BAD_FREE=abort, yet the child %s %d",
              WIFSIGNALED(st) ? "died of signal" : "exited with",
              WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        printf("  double free with HAKMEM_BAD_FREE=abort (the default): the child aborted\n");
        return hkt_finish(NAME);
    }
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child that freed blocks twice %s %d",
          WIFSIGNALED(st) ? "died of signal" : "exited with",
          WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    CHECK(got == (ssize_t)sizeof msg && msg[1] == 4 * (int)NSIZES,
          "the child did not finish its %d double frees", 4 * (int)NSIZES);
    if (expect_report)
        CHECK(msg[2] == msg[1], "HAKMEM_BAD_FREE=warn: %d of %d double frees reported", msg[2],
              msg[1]);
    printf("  %d double frees (owner/owner, remote/remote, owner/remote, remote/owner; %zu sizes "
           "16 B-3 MiB): ignored, heap sound%s\n",
           msg[1], NSIZES, expect_report ? ", each reported once" : "");
    return hkt_finish(NAME);
}

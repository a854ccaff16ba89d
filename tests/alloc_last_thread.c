/* alloc_last_thread: a process ends when its last thread does, as on glibc, with hakmem's
 * background thread running: (1) main() calls pthread_exit and a worker that freed enough to
 * wake the purger ends later; (2) a worker thread forks, and the child's only thread (that
 * worker's copy) returns. Each case runs in a child process that must exit with status 0 and
 * run its atexit handler within 20 s; a process kept alive by the purger would not. */
#include "alloc_test.h"

#define NAME "alloc_last_thread"

static int report_fd = -1;

static void at_exit_handler(void) {
    ssize_t w = write(report_fd, "x", 1);
    (void)w;
}

/* Enough memory mapped and freed that the purger starts (it does once 8 MiB were mapped). */
static void churn(void) {
    enum { N = 200 };
    void *v[N];
    for (int i = 0; i < N; i++) {
        v[i] = malloc(100000);
        REQUIRE(v[i], "malloc");
        memset(v[i], 1, 100000);
    }
    for (int i = 0; i < N; i++) free(v[i]);
}

static void *worker_pthread_exit(void *arg) {
    (void)arg;
    churn();
    usleep(200000); /* main has exited by now */
    return NULL;
}

static void *worker_last(void *arg) {
    (void)arg;
    churn();
    sleep(3); /* past the watch (about 2 s) that an earlier exit may have started */
    return NULL;
}

/* Exits while worker_last lives: only the last thread with a heap to exit wakes the purger. */
static void *worker_first(void *arg) {
    (void)arg;
    churn();
    pthread_t t;
    if (pthread_create(&t, NULL, worker_last, NULL) != 0) _exit(5);
    pthread_detach(t);
    usleep(200000);
    return NULL;
}

static void *worker_fork(void *arg) {
    (void)arg;
    churn();
    pid_t pid = fork();
    if (pid == 0) {
        churn(); /* the child's copy of this thread wakes a purger of its own */
        return NULL; /* the child's last thread ends: the child must exit 0 */
    }
    int st = 0;
    pid_t got = -1;
    for (int i = 0; i < 1000 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++) usleep(10000);
    if (got != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        _exit(3); /* the grandchild did not end */
    }
    _exit(WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 4);
}

/* Run one case in a child; 0 when it exited 0 with its atexit handler run. */
static int run_case(const char *what, void *(*fn)(void *), int main_exits) {
    int fds[2];
    REQUIRE(pipe(fds) == 0, "pipe");
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0, "fork");
    if (pid == 0) {
        close(fds[0]);
        report_fd = fds[1];
        if (main_exits) atexit(at_exit_handler);
        pthread_t t;
        if (pthread_create(&t, NULL, fn, NULL) != 0) _exit(5);
        if (main_exits) pthread_exit(NULL);
        pthread_join(t, NULL);
        _exit(6); /* worker_fork ends the process itself */
    }
    close(fds[1]);
    fcntl(fds[0], F_SETFL, O_NONBLOCK); /* a killed case's grandchild may hold the pipe */
    int st = 0;
    pid_t got = 0;
    /* longer than worker_fork waits for its child, so that it kills that child itself */
    for (int i = 0; i < 2000 && (got = waitpid(pid, &st, WNOHANG)) == 0; i++) usleep(10000);
    if (got != pid) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
    }
    char c;
    int handler = read(fds[0], &c, 1) == 1;
    close(fds[0]);
    int ok = got == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0 && (handler || !main_exits);
    CHECK(ok, "%s: %s (status %#x%s)", what,
          got != pid ? "still running after 20 s, killed" : "ended wrongly", st,
          main_exits && !handler ? ", atexit handler not run" : "");
    printf("  %s: %s\n", what, ok ? "exited 0 on its own" : "FAILED");
    return ok ? 0 : 1;
}

int main(void) {
    hkt_init(NAME);
    run_case("main() calls pthread_exit, a worker ends 200 ms later", worker_pthread_exit, 1);
    run_case("a worker forks, the child's only thread returns", worker_fork, 0);
    run_case("main() calls pthread_exit, two workers end 3 s apart", worker_first, 1);
    return hkt_finish(NAME);
}

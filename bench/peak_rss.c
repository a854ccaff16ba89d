/* peak_rss: runs one program and reports its peak RSS (ru_maxrss from wait4) to a file.
 * The runner needs it because Linux carries a process's RSS high-water mark across exec: a
 * child forked straight from python reports python's footprint (~14 MiB) as its own peak.
 * Forked from this small process, the workload's figure is its own. Sets LD_PRELOAD only in
 * the child, so the allocator under test never runs inside this launcher. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *out = NULL, *preload = NULL;
    int i = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
            out = argv[++i];
        else if (strcmp(argv[i], "--preload") == 0 && i + 1 < argc)
            preload = argv[++i];
        else if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        } else
            break;
    }
    if (!out || i >= argc) {
        fprintf(stderr, "usage: peak_rss --out FILE [--preload LIB] -- PROGRAM [ARGS...]\n"
                        "Runs PROGRAM (with LD_PRELOAD=LIB when given), writes "
                        "'maxrss_kb=N' to FILE and exits with PROGRAM's status.\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("peak_rss: fork");
        return 127;
    }
    if (pid == 0) {
        if (preload && *preload)
            setenv("LD_PRELOAD", preload, 1);
        else
            unsetenv("LD_PRELOAD");
        execvp(argv[i], &argv[i]);
        fprintf(stderr, "peak_rss: exec %s: %s\n", argv[i], strerror(errno));
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0)
        if (errno != EINTR) {
            perror("peak_rss: wait4");
            return 127;
        }
    FILE *f = fopen(out, "w");
    if (!f || fprintf(f, "maxrss_kb=%ld\n", ru.ru_maxrss) < 0 || fclose(f) != 0) {
        perror("peak_rss: writing result");
        return 127;
    }
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}

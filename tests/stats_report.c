/* The statistics report: hk_stats_print and hk_stats_print_json on the same counters, and
 * the report at exit (HAKMEM_STATS, HAKMEM_STATS_FILE). This program makes known
 * allocations and prints both reports on stdout; tests/stats_check.py reads them and checks
 * that they agree with each other and with what was allocated.
 *   stats_report            both reports on stdout: the JSON line first, then the text
 *   stats_report --exit     no report of its own; prints its pid (the report at exit follows)
 *   stats_report --fork     as --exit, and a child that exits the same way prints its pid */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hakmem.h"

#define SMALL 100
static void *small[SMALL], *large_block, *huge_block;

static int allocate(void) {
    for (int i = 0; i < SMALL; i++)
        if (!(small[i] = hk_malloc(48))) return 0;
    large_block = hk_malloc(512 << 10); /* a run of slices */
    huge_block = hk_malloc(8 << 20);    /* a mapping of its own */
    if (!large_block || !huge_block) return 0;
    memset(huge_block, 1, 8 << 20);
    return hk_owns(small[0]) && hk_owns(huge_block);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    if (!allocate()) {
        fprintf(stderr, "FAIL: allocations\n");
        return 1;
    }
    if (strcmp(mode, "--exit") == 0 || strcmp(mode, "--fork") == 0) {
        if (strcmp(mode, "--fork") == 0) {
            fflush(stdout);
            pid_t child = fork();
            if (child < 0) return 1;
            if (child == 0) {
                printf("pid %ld\n", (long)getpid());
                exit(0);
            }
            int st;
            if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) return 1;
        }
        printf("pid %ld\n", (long)getpid());
        return 0;
    }
    if (mode[0]) {
        fprintf(stderr, "usage: stats_report [--exit|--fork]\n");
        return 2;
    }
    /* Nothing allocates between the two reports, so every counter but the RSS is the same. */
    hk_stats_print_json(stdout);
    hk_stats_print(stdout);
    return 0;
}

/* alloc_libc: the C library and the dynamic loader hand hakmem back only pointers it allocated.
 * Runs what makes them allocate and free on their own: dlopen/dlclose loops (libraries with
 * and without TLS, so threads' TLS vectors grow), threads that start and exit, setlocale,
 * newlocale, iconv, getaddrinfo and getpwnam (NSS modules loaded on demand), regcomp, stdio
 * streams, many atexit handlers, fork then exec, popen. Since a bad free aborts by default,
 * any foreign pointer among them ends this program; it also checks hakmem counted none. */
#include <iconv.h>
#include <locale.h>
#include <netdb.h>
#include <pwd.h>
#include <regex.h>

#include "alloc_test.h"

#define NAME "alloc_libc"

static const char *const libs[] = {"libz.so.1", "libcrypt.so.1", "libresolv.so.2",
                                   "libstdc++.so.6", "libgomp.so.1", "libutil.so.1"};
#define NLIBS (sizeof libs / sizeof libs[0])

static void *thread_body(void *arg) {
    /* A library loaded after the thread's TLS was set up: its TLS block is allocated now. */
    void *(*get_globals)(void) = (void *(*)(void))arg;
    if (get_globals) get_globals();
    char *p = malloc(100);
    free(p);
    return NULL;
}

static int dlopen_loop(int rounds) {
    int opened = 0;
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < NLIBS; i++) {
            void *h = dlopen(libs[i], RTLD_NOW | (r & 1 ? RTLD_GLOBAL : RTLD_LOCAL));
            if (!h) continue; /* not installed here: the others still run */
            opened++;
            void *fn = dlsym(h, "__cxa_get_globals"); /* libstdc++: uses its TLS */
            pthread_t t;
            if (fn && pthread_create(&t, NULL, thread_body, fn) == 0) pthread_join(t, NULL);
            dlclose(h);
        }
    }
    return opened;
}

static void noop(void) {}

int main(void) {
    hkt_init(NAME);
    int opened = dlopen_loop(60);
    CHECK(opened > 0, "none of the libraries could be opened");
    printf("  dlopen/dlclose: %d opens of %zu libraries (TLS ones used from a new thread)\n",
           opened, NLIBS);

    for (int i = 0; i < 20; i++) {
        setlocale(LC_ALL, i & 1 ? "C.UTF-8" : "C");
        locale_t l = newlocale(LC_ALL_MASK, "C.UTF-8", (locale_t)0);
        if (l) freelocale(l);
        iconv_t cd = iconv_open("UTF-16", "UTF-8");
        if (cd != (iconv_t)-1) iconv_close(cd);
        struct addrinfo *ai = NULL;
        if (getaddrinfo("localhost", "80", NULL, &ai) == 0) freeaddrinfo(ai);
        getpwnam("root");
        regex_t re;
        if (regcomp(&re, "a(b|c)*d[0-9]+", REG_EXTENDED) == 0) regfree(&re);
        FILE *f = fopen("/proc/self/maps", "r");
        char line[256];
        if (f) {
            while (fgets(line, sizeof line, f)) {
            }
            fclose(f);
        }
    }
    setlocale(LC_ALL, "C");
    printf("  setlocale, newlocale, iconv, getaddrinfo, getpwnam, regcomp, fopen: 20 rounds\n");

    for (int i = 0; i < 100; i++) atexit(noop); /* past the static slots: atexit allocates */

    pthread_t t[16];
    for (int i = 0; i < 16; i++) CHECK(pthread_create(&t[i], NULL, thread_body, NULL) == 0, "thread");
    for (int i = 0; i < 16; i++) pthread_join(t[i], NULL);

    for (int i = 0; i < 3; i++) {
        fflush(stdout);
        pid_t pid = fork();
        REQUIRE(pid >= 0, "fork");
        if (pid == 0) {
            char *p = malloc(64);
            free(p);
            execl("/bin/true", "true", (char *)NULL);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "fork+exec of /bin/true: status %d", st);
    }
    FILE *pp = popen("echo popen-ok", "r");
    char buf[64] = "";
    if (pp) {
        if (!fgets(buf, sizeof buf, pp)) buf[0] = 0;
        pclose(pp);
    }
    CHECK(strncmp(buf, "popen-ok", 8) == 0, "popen read '%s'", buf);
    printf("  100 atexit handlers, 16 threads, 3 fork+exec, popen: done\n");

    /* hakmem's own count of bad frees: it reports them in its statistics. */
    void (*stats)(FILE *) = (void (*)(FILE *))dlsym(RTLD_DEFAULT, "hk_stats_print");
    if (stats && !hkt_system) {
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);
        REQUIRE(m, "open_memstream");
        stats(m);
        fclose(m);
        const char *bf = text ? strstr(text, "bad frees ") : NULL;
        CHECK(bf && strncmp(bf, "bad frees 0\n", 12) == 0, "hakmem counted bad frees: %.20s",
              bf ? bf : "(no count)");
        printf("  hakmem counted %.12s\n", bf ? bf : "?");
        free(text);
    }
    return hkt_finish(NAME);
}

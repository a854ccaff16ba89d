/* spsc_block: hk_spsc_recv in include/hakmem_spsc.h sleeps instead of spinning, and wakes on a
 * flush and on the producer's close. A watchdog turns a lost wakeup into a failure instead of
 * a hang; a ping-pong over two blocking channels hammers the sleep/wake race window. */
#include "hakmem_spsc.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "spsc_test.h"

static const char *volatile stage = "start";

static void watchdog(int sig) {
    (void)sig;
    static const char msg[] = "spsc_block: watchdog fired (lost wakeup?) during: ";
    if (write(2, msg, sizeof msg - 1) < 0) _exit(1);
    const char *s = stage;
    size_t n = 0;
    while (s[n])
        n++;
    if (write(2, s, n) < 0 || write(2, "\n", 1) < 0) _exit(1);
    _exit(1);
}

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_us(long us) {
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

struct slow {
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    int items;
    int received, error, last;
    double cpu_s, wall_s;
};

static void *blocking_consumer(void *arg) {
    struct slow *s = (struct slow *)arg;
    double w0 = seconds(CLOCK_MONOTONIC), c0 = seconds(CLOCK_THREAD_CPUTIME_ID);
    void *v;
    for (;;) {
        int r = hk_spsc_recv(s->rx, &v);
        if (r != HK_SPSC_OK) {
            s->last = r;
            break;
        }
        if (v != P(s->received + 1)) s->error = 1;
        s->received++;
    }
    s->cpu_s = seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
    s->wall_s = seconds(CLOCK_MONOTONIC) - w0;
    hk_spsc_close_rx(s->rx);
    return NULL;
}

/* A slow producer: the consumer must spend the gaps asleep in the kernel, not spinning. */
static void wakes_on_data(void) {
    stage = "wakes_on_data";
    struct slow s = {0};
    s.items = 60;
    CHECK(hk_spsc_open(16, &s.tx, &s.rx) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, blocking_consumer, &s) == 0);
    for (int i = 1; i <= s.items; i++) {
        sleep_us(2000);
        CHECK(hk_spsc_send(s.tx, P(i)) == HK_SPSC_OK);
    }
    sleep_us(2000);
    hk_spsc_close_tx(s.tx);
    pthread_join(th, NULL);
    if (s.received != s.items || s.last != HK_SPSC_CLOSED)
        fprintf(stderr, "wakes_on_data: recv returned %d after %d of %d items\n", s.last,
                s.received, s.items);
    CHECK(!s.error && s.received == s.items && s.last == HK_SPSC_CLOSED);
    /* 60 gaps of 2 ms: a spinning consumer would burn ~all of them. Allow for slow wakeups. */
    CHECK(s.cpu_s < 0.25 * s.wall_s);
    printf("recv woke for each of %d items sent 2 ms apart, then returned CLOSED; consumer used "
           "%.1f ms CPU over %.0f ms\n",
           s.received, s.cpu_s * 1e3, s.wall_s * 1e3);
}

static void wakes_on_close(void) {
    stage = "wakes_on_close";
    for (int round = 0; round < 20; round++) {
        struct slow s = {0};
        CHECK(hk_spsc_open(4, &s.tx, &s.rx) == 0);
        pthread_t th;
        CHECK(pthread_create(&th, NULL, blocking_consumer, &s) == 0);
        sleep_us(round % 2 ? 5000 : (long)round * 10); /* asleep, or about to be */
        if (round % 4 == 3) CHECK(hk_spsc_write(s.tx, P(1)) == HK_SPSC_OK); /* close flushes */
        hk_spsc_close_tx(s.tx);
        pthread_join(th, NULL);
        CHECK(s.last == HK_SPSC_CLOSED && !s.error);
        CHECK(s.received == (round % 4 == 3 ? 1 : 0));
    }
    printf("recv blocked on an empty channel returned CLOSED when the producer closed (20 "
           "rounds, with and without a last staged item)\n");
}

struct pingpong {
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    int rounds, error;
    long sleeps; /* voluntary context switches: how often recv really slept */
};

static long voluntary_switches(void) {
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_nvcsw;
}

static void *echo(void *arg) {
    struct pingpong *p = (struct pingpong *)arg;
    void *v;
    long s0 = voluntary_switches();
    while (hk_spsc_recv(p->rx, &v) == HK_SPSC_OK)
        if (hk_spsc_send(p->tx, v) != HK_SPSC_OK) p->error = 1;
    p->sleeps = voluntary_switches() - s0;
    hk_spsc_close_rx(p->rx);
    hk_spsc_close_tx(p->tx);
    return NULL;
}

/* Each side blocks in recv on every round trip, with jitter so that the flush lands sometimes
 * before, sometimes during and sometimes after the other side's decision to sleep. */
static void pingpong_race(int rounds) {
    stage = "pingpong_race";
    struct pingpong far = {0};
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    CHECK(hk_spsc_open(2, &tx, &far.rx) == 0);
    CHECK(hk_spsc_open(2, &far.tx, &rx) == 0);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, echo, &far) == 0);
    unsigned seed = 12345;
    void *v;
    int ok = 0;
    for (int i = 1; i <= rounds; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned spin = (seed >> 16) % 4096;
        for (volatile unsigned k = 0; k < spin; k++) {
        }
        CHECK(hk_spsc_send(tx, P(i)) == HK_SPSC_OK);
        if (hk_spsc_recv(rx, &v) == HK_SPSC_OK && v == P(i)) ok++;
    }
    hk_spsc_close_tx(tx);
    CHECK(hk_spsc_recv(rx, &v) == HK_SPSC_CLOSED);
    hk_spsc_close_rx(rx);
    pthread_join(th, NULL);
    CHECK(ok == rounds && !far.error);
    printf("%d blocking round trips with jittered timing (HK_SPSC_SPIN=%d; the echo side slept "
           "%ld times): every item echoed, no lost wakeup\n",
           ok, HK_SPSC_SPIN, far.sleeps);
}

int main(int argc, char **argv) {
    int rounds = argc > 1 ? atoi(argv[1]) : 50000;
    signal(SIGALRM, watchdog);
    alarm(120);
    wakes_on_data();
    wakes_on_close();
    pingpong_race(rounds);
    if (failures) {
        fprintf(stderr, "spsc_block: %d checks failed\n", failures);
        return 1;
    }
    printf("spsc_block: all checks passed\n");
    return 0;
}

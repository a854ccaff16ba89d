/* The header-only channel from an installed hakmem (CMake target hakmem::spsc): one item
 * through a channel, on the system allocator (the target links no library). */
#include <hakmem_spsc.h>
#include <stdio.h>

int main(void) {
    hk_spsc_tx *tx;
    hk_spsc_rx *rx;
    int item = 42;
    void *got = NULL;
    if (hk_spsc_open(16, &tx, &rx) != 0) return 1;
    if (hk_spsc_send(tx, &item) != HK_SPSC_OK || hk_spsc_recv(rx, &got) != HK_SPSC_OK) return 1;
    printf("hakmem_spsc: sent and received %d\n", *(int *)got);
    hk_spsc_close_tx(tx);
    hk_spsc_close_rx(rx);
    return got == &item ? 0 : 1;
}

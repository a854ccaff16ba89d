/* Linked with nothing of hakmem: reports whether the malloc it runs on is hakmem's (found
 * through the preloaded library's hk_owns), for the launcher tests. Exit 0 when it is. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    int (*owns)(const void *) = (int (*)(const void *))dlsym(RTLD_DEFAULT, "hk_owns");
    void *p = malloc(64);
    int ours = owns && owns(p);
    printf("probe: malloc %s hakmem's\n", ours ? "is" : "is NOT");
    free(p);
    return ours ? 0 : 1;
}

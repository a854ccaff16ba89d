/* A program built against an installed hakmem (pkg-config or the CMake package): its malloc
 * must be hakmem's, whether the library was linked shared or static. */
#include <hakmem.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    void *p = malloc(100);
    int ours = hk_owns(p);
    printf("hakmem %d.%d.%d (%d): malloc(100) %s hakmem's\n", HAKMEM_VERSION_MAJOR,
           HAKMEM_VERSION_MINOR, HAKMEM_VERSION_PATCH, HAKMEM_VERSION, ours ? "is" : "is NOT");
    free(p);
    return ours ? 0 : 1;
}

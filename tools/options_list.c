/* options_list: prints the options table of src/options.c (names, defaults, meanings) for
 * the files made from it at build time: the launcher's --help, the man page and the README
 * table the tests compare. Linked with libhakmem.a; reads the table, never the environment.
 *   options_list help|names|man|markdown */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* roff: a backslash is \e, a hyphen \- (so it is not broken or shown as a dash) */
static void roff(const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", stdout);
        else if (*s == '-')
            fputs("\\-", stdout);
        else
            putchar(*s);
    }
}

int main(int argc, char **argv) {
    const char *format = argc == 2 ? argv[1] : "";
    if (strcmp(format, "help") && strcmp(format, "names") && strcmp(format, "man") &&
        strcmp(format, "markdown")) {
        fprintf(stderr, "usage: options_list help|names|man|markdown\n");
        return 2;
    }
    hk_option_view_t v;
    for (size_t i = 0; options_view(i, 1, &v); i++) {
        const char *def = *v.value ? v.value : "-";
        if (strcmp(format, "names") == 0) {
            printf("%s%s", i ? " " : "", v.name);
        } else if (strcmp(format, "help") == 0) {
            printf("  %-26s %5s  %s\n", v.name, def, v.meaning);
        } else if (strcmp(format, "man") == 0) {
            printf(".TP\n.B ");
            roff(v.name);
            printf("\n(default ");
            roff(def);
            printf(") ");
            roff(v.meaning);
            printf("\n");
        } else {
            printf("| `%s` | %s | %s |\n", v.name, def, v.meaning);
        }
    }
    if (strcmp(format, "names") == 0) printf("\n");
    return 0;
}

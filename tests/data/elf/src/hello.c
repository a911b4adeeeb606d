#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static int helper(int x) { return x * 3 + 1; }
int compute(int n) { int s = 0; for (int i = 0; i < n; i++) s += helper(i); return s; }
int main(int argc, char **argv) {
    char buf[64];
    snprintf(buf, sizeof buf, "%d", compute(argc * 10));
    printf("kinfile test %s %zu\n", buf, strlen(buf));
    return getenv("KINFILE") ? 1 : 0;
}

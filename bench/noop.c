/* bench/noop.c: the floor for the client's own start: a static binary that does nothing. */
int main(void) {
    return 0;
}

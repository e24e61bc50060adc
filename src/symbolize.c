/* symbolize.c — run-time address → function name from the executable's .symtab and dladdr().
 *
 * Addresses in profiles are run-time addresses. For the executable we use its full .symtab
 * (the product is built with -g and not stripped), which names static functions too, where
 * dladdr() would see only exported dynamic symbols. Anything outside the executable (libc,
 * tcmalloc, libmicrohttpd) goes to dladdr(), which covers their exported symbols. Cold path: it
 * maps the executable once, on first use, and must never be called from a signal handler.
 */
#include "symbolize.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct sym {
    uint64_t start; /* link-time address (st_value) */
    uint64_t size;
    uint32_t name; /* offset into the string table */
};

/* Guarded by sym_mu; loaded on first use, dropped by profiling_shutdown. */
static pthread_mutex_t sym_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    bool loaded;
    void *map; /* the executable, mapped read-only; owns the names */
    size_t map_len;
    const char *strtab;
    size_t strtab_len;
    struct sym *syms; /* sorted by start; owned */
    size_t nsyms;
    uint64_t bias;   /* run-time minus link-time address of the executable */
    uint64_t lo, hi; /* run-time range of the executable's loaded segments */
} st;

static int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    (void)arg;
    /* The first object reported is the executable itself. */
    st.bias = info->dlpi_addr;
    st.lo = UINT64_MAX;
    st.hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD) continue;
        uint64_t a = info->dlpi_addr + ph->p_vaddr;
        if (a < st.lo) st.lo = a;
        if (a + ph->p_memsz > st.hi) st.hi = a + ph->p_memsz;
    }
    return 1; /* stop after the first */
}

static int sym_cmp(const void *a, const void *b)
{
    const struct sym *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

static void symtab_unload(void)
{
    free(st.syms);
    if (st.map) munmap(st.map, st.map_len);
    memset(&st, 0, sizeof st);
}

/* Map /proc/self/exe and index its function symbols. Called with sym_mu held. On any failure
 * the table stays empty and lookups fall back to dladdr(). */
static void symtab_load(void)
{
    st.loaded = true;
    dl_iterate_phdr(phdr_cb, NULL);
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || (size_t)sb.st_size < sizeof(ElfW(Ehdr))) {
        close(fd);
        return;
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return;
    st.map = map;
    st.map_len = len;

    const unsigned char *base = map;
    const ElfW(Ehdr) *eh = map;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff > len ||
        (size_t)eh->e_shnum * sizeof(ElfW(Shdr)) > len - eh->e_shoff)
        goto bad;
    const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(base + eh->e_shoff);
    const ElfW(Shdr) *symsec = NULL;
    for (unsigned i = 0; i < eh->e_shnum; i++)
        if (sh[i].sh_type == SHT_SYMTAB) symsec = &sh[i];
    if (!symsec)
        for (unsigned i = 0; i < eh->e_shnum; i++)
            if (sh[i].sh_type == SHT_DYNSYM) symsec = &sh[i];
    if (!symsec || symsec->sh_link >= eh->e_shnum) goto bad;
    const ElfW(Shdr) *strsec = &sh[symsec->sh_link];
    if (symsec->sh_offset > len || symsec->sh_size > len - symsec->sh_offset ||
        strsec->sh_offset > len || strsec->sh_size > len - strsec->sh_offset ||
        symsec->sh_entsize != sizeof(ElfW(Sym)))
        goto bad;
    const ElfW(Sym) *syms = (const ElfW(Sym) *)(base + symsec->sh_offset);
    size_t n = symsec->sh_size / sizeof(ElfW(Sym));
    st.strtab = (const char *)(base + strsec->sh_offset);
    st.strtab_len = strsec->sh_size;

    st.syms = malloc((n ? n : 1) * sizeof *st.syms);
    if (!st.syms) goto bad;
    for (size_t i = 0; i < n; i++) {
        unsigned type = ELF64_ST_TYPE(syms[i].st_info);
        if ((type != STT_FUNC && type != STT_GNU_IFUNC) || syms[i].st_shndx == SHN_UNDEF ||
            syms[i].st_value == 0 || syms[i].st_name >= st.strtab_len)
            continue;
        st.syms[st.nsyms++] = (struct sym){syms[i].st_value, syms[i].st_size, syms[i].st_name};
    }
    qsort(st.syms, st.nsyms, sizeof *st.syms, sym_cmp);
    return;
bad:
    free(st.syms);
    st.syms = NULL;
    st.nsyms = 0;
    munmap(st.map, st.map_len);
    st.map = NULL;
}

const char *symbolize_addr(uint64_t addr, uint64_t *start)
{
    if (start) *start = 0;
    if (st.nsyms && addr >= st.lo && addr < st.hi) {
        uint64_t rel = addr - st.bias;
        size_t lo = 0, hi = st.nsyms; /* find the last start <= rel */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (st.syms[mid].start <= rel)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0) {
            const struct sym *s = &st.syms[lo - 1];
            if (rel < s->start + (s->size ? s->size : 1) &&
                memchr(st.strtab + s->name, '\0', st.strtab_len - s->name)) {
                if (start) *start = s->start + st.bias;
                return st.strtab + s->name;
            }
        }
    }
    Dl_info info;
    if (!dladdr((void *)(uintptr_t)addr, &info) || !info.dli_sname) return NULL;
    if (start) *start = (uint64_t)(uintptr_t)info.dli_saddr;
    return info.dli_sname;
}

void symbolize_lock(void)
{
    pthread_mutex_lock(&sym_mu);
    if (!st.loaded) symtab_load();
}

void symbolize_unlock(void)
{
    pthread_mutex_unlock(&sym_mu);
}

void symbolize_unload(void)
{
    pthread_mutex_lock(&sym_mu);
    symtab_unload();
    pthread_mutex_unlock(&sym_mu);
}

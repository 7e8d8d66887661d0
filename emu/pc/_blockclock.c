/* The native block clock: a UC_HOOK_BLOCK callback that charges each translated
 * block's instruction count to a counter and stops the engine when a budget is spent;
 * a UC_HOOK_EDGE_GENERATED callback that keeps the counts of freshly translated blocks;
 * and the TLB fill (UC_HOOK_TLB_FILL) with its IA-32e page walk, further down.
 *
 * Plain C with no Python and no Unicorn headers: the Python side (emu/pc/clock.py)
 * loads this library with ctypes, hands it the addresses of libunicorn's own
 * uc_emu_stop and uc_ctl (taken from the binding's loaded library), and registers
 * bc_block_hook with uc_hook_add on the binding's engine handle, user data = the
 * bc_state below.  The prototypes used are declared here from the Unicorn API's
 * documented signatures (uc_cb_hookcode_t, uc_emu_stop, uc_ctl).
 *
 * Counting rule (deterministic: a pure function of the guest's execution):
 *   - a block is charged when it is entered, with its exact instruction count, which
 *     Unicorn 2.1.x reports for a translated block through
 *     uc_ctl(UC_CTL_TB_REQUEST_CACHE) (uc_tb.icount; the lookup hits the engine's
 *     jump cache because the block is the one being entered), remembered in two
 *     caches: bc_gen_entry, refreshed at every translation, first (with or without
 *     paging: exact unless two live translations share a start and a size, see
 *     clock.py), then without paging bc_cache_entry (checked against the block's bytes);
 *   - a run restarted after the TLB fill handed an access to the engine's MMU does not
 *     charge the block being run again (the caller's stopped_at, inclusive);
 *   - when the counter has reached the budget at a block's entry, that block is not
 *     charged and the engine stops before running it (Unicorn calls block hooks
 *     ahead of the block's exit check), so a run overshoots its budget by less than
 *     one block; with exact_stop, a block that would cross the budget is not entered
 *     either, and the caller steps its first instructions itself (budget_stop 2);
 *   - a run that was stopped in the middle of a block (a code hook's stop) resumes in
 *     the middle of it: the first block of the next run is not charged again when it
 *     ends where the interrupted block ended (bc_state.resume_*), so the total stays
 *     exact;
 *   - a block left early by an exception is charged whole (documented in clock.py).
 */

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef int (*uc_emu_stop_fn)(void *uc);
typedef int (*uc_ctl_fn)(void *uc, int control, ...);

/* uc_tb as unicorn.h declares it: pc, icount, size. */
struct uc_tb_view {
    uint64_t pc;
    uint16_t icount;
    uint16_t size;
};

/* UC_CTL_READ_WRITE(UC_CTL_TB_REQUEST_CACHE, 2): type 8, 2 arguments, read|write. */
#define BC_CTL_TB_REQUEST_CACHE (8 | (2 << 26) | (3u << 30))

/* A direct-mapped cache of block instruction counts, so most blocks are counted without a
 * call into the engine.  An entry is trusted only while the guest runs without paging
 * (linear = physical, so the block's bytes are in `ram`) and when the block has the same
 * start, byte size and first and last 8 bytes as when it was counted: code rewritten in
 * place is asked about again. */
#define BC_CACHE_SIZE 8192
struct bc_cache_entry {
    uint64_t pc;
    uint64_t head;
    uint64_t tail;
    uint32_t size;
    uint32_t icount;
};

/* A second direct-mapped cache, for blocks the first cannot check (paging on: the
 * block's linear address says nothing about where its bytes are): the count of the last
 * block translated, or asked about, with the same linear start and byte size.  Every
 * translation the engine makes while running is reported to bc_tb_generated
 * (UC_HOOK_EDGE_GENERATED, called from the engine's block lookup right after it
 * translates a block, with the new block's pc, size and icount), so an entry is replaced
 * whenever a block with its start is translated again (rewritten code, another address
 * space, a flushed translation cache). */
struct bc_gen_entry {
    uint64_t pc;
    uint32_t size;
    uint32_t icount;
};

struct bc_state {
    uint64_t executed;     /* instructions charged so far (the clock, absolute) */
    uint64_t budget;       /* stop at the first block entry with executed >= budget */
    uint64_t blocks;       /* blocks charged (statistics) */
    uint64_t resume_pc;    /* linear address a run resumes at inside a charged block */
    uint64_t resume_end;   /* end (linear) of that block; 0 = no resume pending */
    uint64_t last_pc;      /* the last block charged: start, end, instruction count */
    uint64_t last_end;
    uint32_t last_icount;
    uint32_t budget_stop;  /* 1: stopped at a block entry at/past the budget;
                              2: stopped before a block that would cross it (exact_stop) */
    uint32_t estimated;    /* blocks whose count had to be estimated from their size */
    uint32_t exact;        /* 1: icount from the engine; 0: size-based estimate */
    uint32_t exact_stop;   /* 1: do not enter a block that would cross the budget */
    uint32_t partial_left; /* budget_stop 2: instructions of that block still allowed */
    uint64_t partial_pc;   /* budget_stop 2: the block (start, end) */
    uint64_t partial_end;
    uc_emu_stop_fn emu_stop;
    uc_ctl_fn ctl;
    const uint8_t *ram;    /* guest RAM below the PCI hole (linear = physical there) */
    uint64_t ram_size;
    const uint32_t *paging; /* the TLB fill's `switched` flag; NULL: no count cache */
    uint64_t cache_hits;
    struct bc_cache_entry *cache; /* BC_CACHE_SIZE entries, owned by the caller */
    struct bc_gen_entry *gen_cache; /* BC_CACHE_SIZE entries, owned by the caller; NULL:
                                       no such cache */
    uint64_t gen_hits;
};



static void bc_block_bytes(const struct bc_state *st, uint64_t pc, uint32_t size,
                           uint64_t *head, uint64_t *tail)
{
    const uint8_t *code = st->ram + pc;
    uint32_t n = size < 8 ? size : 8;
    *head = 0;
    *tail = 0;
    memcpy(head, code, n);
    memcpy(tail, code + size - n, n);
}

static uint32_t bc_gen_slot(uint64_t pc)
{
    return (uint32_t)((pc ^ (pc >> 13) ^ (pc >> 29)) % BC_CACHE_SIZE);
}

/* UC_HOOK_EDGE_GENERATED: the engine has just translated `cur` (see bc_gen_entry). */
void bc_tb_generated(void *uc, const struct uc_tb_view *cur, const struct uc_tb_view *prev,
                     void *user_data)
{
    struct bc_state *st = (struct bc_state *)user_data;
    (void)uc;
    (void)prev;
    if (st->gen_cache == NULL || cur->icount == 0)
        return;
    struct bc_gen_entry *g = &st->gen_cache[bc_gen_slot(cur->pc)];
    g->pc = cur->pc;
    g->size = cur->size;
    g->icount = cur->icount;
}

/* Average x86 instruction length used by the size-based estimate (bytes). */
#define BC_ESTIMATE_BYTES 3

/* Charge a block of `icount` instructions at [address, address + size) to the clock. */
static inline void bc_charge(struct bc_state *st, uint64_t address, uint32_t size,
                             uint32_t icount)
{
    st->executed += icount;
    st->blocks++;
    st->last_pc = address;
    st->last_end = address + size;
    st->last_icount = icount;
}

static void bc_block_slow(void *uc, uint64_t address, uint32_t size, struct bc_state *st);

/* Called at every block entry: the common case (nothing pending, budget
 * not reached, the block counted from the translation-time cache) stays a small leaf
 * function; everything else is bc_block_slow. */
void bc_block_hook(void *uc, uint64_t address, uint32_t size, void *user_data)
{
    struct bc_state *st = (struct bc_state *)user_data;

    if (st->resume_end == 0 && st->executed < st->budget && !st->exact_stop
            && st->gen_cache != NULL && st->exact) {
        const struct bc_gen_entry *g = &st->gen_cache[bc_gen_slot(address)];
        if (g->pc == address && g->size == size && g->icount != 0 && size > 0) {
            st->gen_hits++;
            bc_charge(st, address, size, g->icount);
            return;
        }
    }
    bc_block_slow(uc, address, size, st);
}

static __attribute__((noinline)) void bc_block_slow(void *uc, uint64_t address, uint32_t size,
                                                    struct bc_state *st)
{
    uint32_t icount = 0;
    struct uc_tb_view tb;

    if (st->resume_end != 0) {
        uint64_t end = st->resume_end;
        st->resume_end = 0;
        if (address == st->resume_pc && size > 0 && address + size <= end) {
            /* The tail of a block already charged (or counted by the caller).  It may
             * come back shorter than it was: the engine cuts a block translated with a
             * code hook (the caller's stepping) where the hook calls fill its op buffer. */
            st->last_pc = address;
            st->last_end = end;
            return;
        }
    }
    if (st->executed >= st->budget) {
        st->budget_stop = 1;
        st->emu_stop(uc);
        return;
    }
    if (st->gen_cache != NULL && st->exact && !st->exact_stop && size > 0) {
        /* The common case: a block translated before, counted from the
         * translation-time cache without a call into the engine. */
        const struct bc_gen_entry *g = &st->gen_cache[bc_gen_slot(address)];
        if (g->pc == address && g->size == size && g->icount != 0) {
            st->gen_hits++;
            bc_charge(st, address, size, g->icount);
            return;
        }
    }
    if (st->exact) {
        int cacheable = st->cache != NULL && st->paging != NULL && !*st->paging && size > 0
                        && address + size <= st->ram_size;
        struct bc_cache_entry *e = &st->cache[(address ^ (address >> 13)) % BC_CACHE_SIZE];
        uint64_t head = 0, tail = 0;
        if (cacheable) {
            bc_block_bytes(st, address, size, &head, &tail);
            if (e->pc == address && e->size == size && e->head == head && e->tail == tail) {
                icount = e->icount;
                st->cache_hits++;
            }
        }
        struct bc_gen_entry *g = NULL;
        if (!cacheable && st->gen_cache != NULL && size > 0) {
            g = &st->gen_cache[bc_gen_slot(address)];
            if (g->pc == address && g->size == size && g->icount != 0) {
                icount = g->icount;
                st->gen_hits++;
            }
        }
        if (icount == 0 && st->ctl(uc, BC_CTL_TB_REQUEST_CACHE, address, &tb) == 0
                && tb.pc == address) {
            icount = tb.icount;
            if (cacheable) {
                e->pc = address;
                e->size = size;
                e->head = head;
                e->tail = tail;
                e->icount = icount;
            } else if (g != NULL) {
                g->pc = tb.pc;
                g->size = tb.size;
                g->icount = tb.icount;
            }
        }
    }
    if (icount == 0) {
        icount = size / BC_ESTIMATE_BYTES;
        if (icount == 0)
            icount = 1;
        st->estimated++;
    }
    if (st->exact_stop && st->executed + icount > st->budget) {
        /* The caller runs the first partial_left instructions of this block itself. */
        st->budget_stop = 2;
        st->partial_left = (uint32_t)(st->budget - st->executed);
        st->partial_pc = address;
        st->partial_end = address + size;
        st->emu_stop(uc);
        return;
    }
    bc_charge(st, address, size, icount);
}

/* The TLB fill hook (UC_HOOK_TLB_FILL with the engine in UC_TLB_VIRTUAL mode): the
 * engine asks it for the physical page and permissions of a linear page on a TLB miss.
 *
 * Why: Unicorn 2.1.4 takes the slow store path (notdirty_write) for every store through
 * a TLB entry that also allows instruction fetches, and its own x86 fill makes every
 * entry the page permits executable: guest stores run 5-20 times slower than loads.
 * Here a data access to a page that never had code fetched from it gets an entry without
 * execute permission, so the page is marked dirty after its first store and later stores
 * take the fast path; a page code was ever fetched from keeps executable entries and the
 * slow path, which is what detects self-modifying code.  Region permissions (the ROM) and
 * device regions are still handled by the engine (it maps the physical page we return).
 *
 * Without paging (CR0.PG = 0) linear = physical (32 bits).  With paging, the hook walks
 * the guest's page tables itself in IA-32e mode (SDM vol 3 §4.5: CR0.PG, CR4.PAE,
 * EFER.LMA; 4-level; 4 KiB, 2 MiB and, when the CPU model has them, 1 GiB pages) and,
 * for an access the CPU allows at the current privilege level (CS.RPL), computes the
 * permissions as the CPU would (§4.6: R/W of every level with CR0.WP, U/S of every level,
 * XD of any level with EFER.NXE, SMEP for supervisor fetches from user pages), sets the
 * Accessed flag on every paging-structure entry used and Dirty on the leaf for a write
 * (§4.8), writing the guest's tables in RAM.  A read or fetch of a page whose Dirty flag
 * is clear gets no write permission, so the first store misses again and sets it.
 *
 * Everything else is handed to the engine's own MMU, whose fault path is the one the
 * emulator relies on (#PF with its error code and CR2, #GP for a non-canonical address):
 * a page-table entry that is not present or has a reserved bit set, an access the
 * permissions forbid (also an implicit supervisor access made at CPL 3, which this walk
 * cannot tell from a user access), tables outside RAM, and the paging forms the walk does
 * not do (32-bit paging, PAE without long mode, LA57, CR4.PKE, CR4.SMAP).  Handing over =
 * switch the engine to its own TLB (UC_TLB_CPU) and fail the fill: the run ends with an
 * error the caller recognises by `switched` (1: this access; 2: the paging form), the TLB
 * is flushed and the instruction restarts under the engine's MMU; the caller switches back
 * to this hook (and flushes) at the start of a later run.
 *
 * A limit of filling 4 KiB entries: the engine records no large page, so an INVLPG of one
 * address inside a 2 MiB or 1 GiB page drops only that 4 KiB of it (a guest that rewrites
 * a large-page entry and invalidates it with a single INVLPG would keep stale entries for
 * the rest; MOV to CR3 or CR4 flushes everything, as before).
 */

typedef int (*uc_reg_read_fn)(void *uc, int regid, void *value);

struct uc_tlb_entry_view {
    uint64_t paddr;
    int perms;
};

/* uc_x86_msr as unicorn/x86.h declares it. */
struct bc_msr {
    uint32_t rid;
    uint64_t value;
};

/* A RAM range: guest physical [base, base + size) is host ram + offset. */
struct bc_ram_range {
    uint64_t base;
    uint64_t size;
    uint64_t offset;
};

#define BC_RAM_RANGES 4

struct bc_tlb {
    uc_reg_read_fn reg_read;
    uc_ctl_fn ctl;
    int cr0_regid;         /* UC_X86_REG_CR0 */
    uint32_t switched;     /* 0: this hook fills; 1: an access was handed to the engine's
                              MMU; 2: a paging form this hook does not walk */
    uint64_t fills;
    uint64_t last_vaddr;   /* the last fill (diagnostics; the caller reads last_type) */
    int last_type;
    uint8_t *code_pages;   /* 1 bit per 4 KiB physical page: code was fetched from it */
    uint64_t code_pages_count; /* physical pages the bitmap covers (beyond: "has code") */
    int cr3_regid;         /* UC_X86_REG_CR3, CR4, CS, MSR */
    int cr4_regid;
    int cs_regid;
    int msr_regid;
    uint8_t *ram;          /* the host buffer behind every RAM range */
    struct bc_ram_range ranges[BC_RAM_RANGES];
    uint32_t nranges;
    uint32_t paging;       /* 1 while the last fill saw CR0.PG (the block clock's flag) */
    uint32_t gb_pages;     /* the CPU model has 1 GiB pages (CPUID 80000001h EDX bit 26) */
    uint32_t phys_bits;    /* MAXPHYADDR (CPUID 80000008h EAX[7:0]) */
    uint64_t walks;        /* fills answered by the 4-level walk (statistics) */
    uint64_t handoffs;     /* fills handed to the engine's MMU */
    uint8_t *data_pages;   /* 1 bit per 4 KiB physical page: a data-only entry was made */
    uint64_t code_flushes; /* TLB flushes for a page that became a code page (statistics) */
};

#define BC_PROT_READ 1
#define BC_PROT_WRITE 2
#define BC_PROT_EXEC 4
#define BC_MEM_WRITE 17      /* uc_mem_type UC_MEM_WRITE */
#define BC_MEM_FETCH 18      /* uc_mem_type UC_MEM_FETCH */
#define BC_CR0_WP 0x10000u
#define BC_CR0_PG 0x80000000u
#define BC_CR4_PAE (1u << 5)
#define BC_CR4_LA57 (1u << 12)
#define BC_CR4_SMEP (1u << 20)
#define BC_CR4_SMAP (1u << 21)
#define BC_CR4_PKE (1u << 22)
#define BC_EFER_LMA (1u << 10)
#define BC_EFER_NXE (1u << 11)
#define BC_MSR_EFER 0xC0000080u
#define BC_PTE_P 1u
#define BC_PTE_RW 2u
#define BC_PTE_US 4u
#define BC_PTE_A 0x20u
#define BC_PTE_D 0x40u
#define BC_PTE_PS 0x80u
#define BC_PTE_XD (1ull << 63)
#define BC_ADDR_MASK 0x000FFFFFFFFFF000ull
/* UC_CTL_WRITE(UC_CTL_TLB_TYPE, 1): type 12, 1 argument, write; UC_TLB_CPU = 0. */
#define BC_CTL_TLB_TYPE (12 | (1 << 26) | (1u << 30))

static bool bc_handoff(void *uc, struct bc_tlb *t, uint32_t why)
{
    t->ctl(uc, BC_CTL_TLB_TYPE, 0);
    t->switched = why;
    t->handoffs++;
    return false;
}

/* The host address of the 8-byte paging-structure entry at guest physical `at`. */
static uint64_t *bc_table_entry(const struct bc_tlb *t, uint64_t at)
{
    for (uint32_t i = 0; i < t->nranges; i++) {
        const struct bc_ram_range *r = &t->ranges[i];
        if (at >= r->base && at + 8 <= r->base + r->size)
            return (uint64_t *)(t->ram + r->offset + (at - r->base));
    }
    return NULL;
}

static int bc_has_code(const struct bc_tlb *t, uint64_t page)
{
    if (page >= t->code_pages_count)
        return 1;
    return (t->code_pages[page >> 3] >> (page & 7)) & 1;
}

/* UC_CTL_WRITE(UC_CTL_TLB_FLUSH, 0): type 11, no argument, write. */
#define BC_CTL_TLB_FLUSH (11 | (1u << 30))

/* Code is fetched from a physical page.  The first time, if a data-only entry was ever
 * made for it, the whole TLB is dropped: such an entry may still be in the TLB under
 * another linear address, and once the engine has marked it dirty (after one store) its
 * stores would leave this page's translations stale.  (The engine's own fill may move
 * entries around during a fill too: its callers look the entry up again afterwards.) */
static void bc_mark_code(void *uc, struct bc_tlb *t, uint64_t page)
{
    if (page >= t->code_pages_count)
        return;
    uint8_t bit = (uint8_t)(1u << (page & 7));
    if (t->code_pages[page >> 3] & bit)
        return;
    t->code_pages[page >> 3] |= bit;
    if (t->data_pages != NULL && (t->data_pages[page >> 3] & bit)) {
        t->ctl(uc, BC_CTL_TLB_FLUSH);
        t->code_flushes++;
    }
}

static void bc_mark_data(struct bc_tlb *t, uint64_t page)
{
    if (page < t->code_pages_count && t->data_pages != NULL)
        t->data_pages[page >> 3] |= (uint8_t)(1u << (page & 7));
}

/* The 4-level walk.  Returns false to hand the access to the engine (nothing written). */
static bool bc_walk(void *uc, struct bc_tlb *t, uint64_t vaddr, int type, uint64_t cr0,
                    struct uc_tlb_entry_view *entry)
{
    uint64_t cr3 = 0, cr4 = 0, cs = 0;
    struct bc_msr efer = {BC_MSR_EFER, 0};

    if (t->reg_read(uc, t->cr4_regid, &cr4) != 0 || t->reg_read(uc, t->cr3_regid, &cr3) != 0
            || t->reg_read(uc, t->cs_regid, &cs) != 0
            || t->reg_read(uc, t->msr_regid, &efer) != 0)
        return bc_handoff(uc, t, 2);
    if (!(efer.value & BC_EFER_LMA) || !(cr4 & BC_CR4_PAE)
            || (cr4 & (BC_CR4_LA57 | BC_CR4_PKE | BC_CR4_SMAP)))
        return bc_handoff(uc, t, 2);
    /* Canonical: bits 63..47 all equal (else #GP or #SS, the engine's to raise). */
    if ((uint64_t)(((int64_t)vaddr << 16) >> 16) != vaddr)
        return bc_handoff(uc, t, 1);

    int user = (cs & 3) == 3;
    int write = type == BC_MEM_WRITE;
    int fetch = type == BC_MEM_FETCH;
    int nxe = (efer.value & BC_EFER_NXE) != 0;
    uint32_t phys_bits = t->phys_bits ? t->phys_bits : 36;
    /* Reserved in every entry: address bits at and above MAXPHYADDR; XD without NXE. */
    uint64_t rsvd = BC_ADDR_MASK & ~((1ull << phys_bits) - 1);
    if (!nxe)
        rsvd |= BC_PTE_XD;

    uint64_t *used[4];
    int levels = 0;
    uint64_t table = cr3 & BC_ADDR_MASK;
    uint64_t rw = BC_PTE_RW, us = BC_PTE_US, xd = 0;
    uint64_t e = 0, page_base = 0, page_mask = 0;
    for (int level = 4; level >= 1; level--) {
        uint64_t index = (vaddr >> (12 + 9 * (level - 1))) & 511;
        uint64_t *slot = bc_table_entry(t, table + index * 8);
        if (slot == NULL)
            return bc_handoff(uc, t, 1);
        e = *slot;
        if (!(e & BC_PTE_P) || (e & rsvd))
            return bc_handoff(uc, t, 1);
        used[levels++] = slot;
        rw &= e;
        us &= e;
        xd |= e & BC_PTE_XD;
        if (level == 1) {
            page_mask = 0xFFFull;
            break;
        }
        if (e & BC_PTE_PS) {
            if (level == 4 || (level == 3 && !t->gb_pages))
                return bc_handoff(uc, t, 1);  /* reserved: PS in a PML4E, or no 1 GiB pages */
            page_mask = level == 3 ? 0x3FFFFFFFull : 0x1FFFFFull;
            /* Bits 12 (PAT) .. of the page base below the page size: bit 12 is PAT,
             * the bits above it up to the page size are reserved. */
            if (e & page_mask & ~0x1FFFull)
                return bc_handoff(uc, t, 1);
            break;
        }
        table = e & BC_ADDR_MASK;
    }
    page_base = (e & BC_ADDR_MASK) & ~page_mask;

    /* SDM vol 3 §4.6: access rights. */
    int may_write, may_fetch;
    if (user) {
        if (!us)
            return bc_handoff(uc, t, 1);
        may_write = rw != 0;
        may_fetch = !xd;
    } else {
        may_write = rw != 0 || !(cr0 & BC_CR0_WP);
        may_fetch = !xd && !((cr4 & BC_CR4_SMEP) && us);
    }
    if ((write && !may_write) || (fetch && !may_fetch))
        return bc_handoff(uc, t, 1);

    /* §4.8: Accessed on every entry used, Dirty on the leaf for a write. */
    for (int i = 0; i < levels; i++)
        if (!(*used[i] & BC_PTE_A))
            *used[i] |= BC_PTE_A;
    uint64_t *leaf = used[levels - 1];
    if (write && !(*leaf & BC_PTE_D))
        *leaf |= BC_PTE_D;

    uint64_t paddr = page_base | (vaddr & page_mask & ~0xFFFull);
    uint64_t page = paddr >> 12;
    if (fetch)
        bc_mark_code(uc, t, page);
    int perms = BC_PROT_READ;
    if (may_write && (*leaf & BC_PTE_D))
        perms |= BC_PROT_WRITE;
    /* Execute permission only where code was fetched (see the SMC note below). */
    if (may_fetch && (fetch || bc_has_code(t, page)))
        perms |= BC_PROT_EXEC;
    else
        bc_mark_data(t, page);
    entry->paddr = paddr;
    entry->perms = perms;
    t->walks++;
    return true;
}

bool bc_tlb_fill(void *uc, uint64_t vaddr, int type, struct uc_tlb_entry_view *entry,
                 void *user_data)
{
    struct bc_tlb *t = (struct bc_tlb *)user_data;
    uint64_t cr0 = 0;

    t->fills++;
    t->last_vaddr = vaddr;
    t->last_type = type;
    if (t->reg_read(uc, t->cr0_regid, &cr0) != 0)
        return bc_handoff(uc, t, 2);
    if (cr0 & BC_CR0_PG) {
        t->paging = 1;
        return bc_walk(uc, t, vaddr, type, cr0, entry);
    }
    t->paging = 0;
    /* Without paging there is no long mode: linear addresses are 32 bits (a segment base
     * plus an offset can carry past bit 31 in the engine's 64-bit arithmetic). */
    entry->paddr = vaddr & 0xFFFFF000u;
    uint64_t page = entry->paddr >> 12;
    if (type == BC_MEM_FETCH)
        bc_mark_code(uc, t, page);
    /* A page that ever held fetched code keeps executable entries (the engine's slow,
     * self-modifying-code-safe store path): Unicorn 2.1.4 marks a data-only entry dirty
     * after one store even while other translated blocks remain on its page, so later
     * stores there would leave those blocks stale. */
    if (type == BC_MEM_FETCH || bc_has_code(t, page)) {
        entry->perms = BC_PROT_READ | BC_PROT_WRITE | BC_PROT_EXEC;
    } else {
        entry->perms = BC_PROT_READ | BC_PROT_WRITE;
        bc_mark_data(t, page);
    }
    return true;
}

/* exporter._fastscan: the compiled scanner of the syslog and exim parsers (part of the parser stage).
 *
 * One call reads a whole chunk of log lines and does, in C, what a parser's Python code does
 * for its commonest lines. A scanner has one grammar. With "syslog" (the default), as the
 * syslog parser (exporter/parsers/syslog.py) would:
 *
 *   - a Postfix delivery record or reject in a plain RFC 3164 line (LINE below) is read
 *     and counted here: its label fields (outcome, code, reply, remote host) go into a
 *     tally, its timestamp's minute into a table of the seconds seen, exactly as
 *     postfix.delivery() and postfix.reject() would make them;
 *   - an Exim delivery line (=> -> >> ** ==) in such a line, of a program named in exim_programs,
 *     is read as exim.parse_message() reads it (the mainlog grammar's exim_delivery() below);
 *     since exim.py then forgets the last rejection it read, the scan reports the offsets of
 *     those lines (forgets) and the syslog parser drops that memory there;
 *   - every other line is searched for the prefilter patterns (exporter/parsers/prefilter.py):
 *     a line that holds none is ignored, a line that holds one is handed back to Python by
 *     its offset, and the Python parser reads it as it reads every line without this module.
 *
 * Whenever a line is not plainly of that shape (a character outside printable ASCII, a
 * record that the regular expression could only match by backtracking, a program that
 * another parser claims by its exact name), it is handed back to Python rather than
 * guessed at: this module never decides a line differently from the Python code, it only
 * decides fewer of them. tests/test_fastscan.py compares the two on every test log and on
 * generated lines.
 *
 * LINE is the Python path's two patterns one after the other (envelope._RFC3164, then
 * postfix._DELIVERY, or postfix._REJECT on a message without "status="), narrowed so that it
 * admits only lines both of them match, and finds the same fields there:
 *   - every byte is printable ASCII (" " to "~"); a tab, a carriage return, another control
 *     byte or a non-ASCII byte sends the line back to Python. On printable ASCII, "\S" and
 *     "." of the Python patterns are exactly [!-~] and [ -~], and "[^\s...]" the same set
 *     without the space (NOT_SPACE, NAME, HOST below);
 *   - the envelope has one shape that splits only one way: a month name, day and time with
 *     no fraction, no BSD priority tag, a host with no ":", "<", "[" or "]", and a program
 *     name holding a "/" (Postfix's, postfix.claims()) with its [pid], not claimed by
 *     another parser by its exact name;
 *   - the record is postfix._DELIVERY as it is, or postfix._REJECT when the message holds
 *     no "status=" (postfix.parse_message() tries the delivery patterns first on such a
 *     message), ending at the end of the line.
 * The Python code is the reference; tests/test_fastscan.py holds the two equal.
 *
 * With grammar "exim", as the Exim mainlog parser (exporter/parsers/exim_files.py) would: a
 * line that parser can never read (no date, no status mark on any path) is ignored, a plain
 * status line (printable ASCII, the commonest shapes) is read into the tally as
 * exim.parse_body() reads it, and every other line goes back to Python by its offset; see
 * read_exim() below. tests/test_fastscan_exim.py holds it to the Python code.
 *
 * The patterns are the prefilter's bytes patterns in a small subset of regular expression
 * syntax: plain bytes, "\" before a byte, and classes "[...]" with ranges. Anything else
 * is refused at construction (ValueError), and the caller uses the Python path.
 *
 * The scan runs without the GIL, a large chunk cut at line ends into parts that threads
 * read at once (one per CPU this process may use, at most MAX_THREADS), each into tables of
 * its own that are then merged in chunk order. Python objects are made only for the
 * distinct tally keys and minutes at the end.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------ */
/* Byte classes                                                                          */

typedef struct { uint64_t bits[4]; } ByteSet;

static inline int set_has(const ByteSet *s, unsigned char c) { return (s->bits[c >> 6] >> (c & 63)) & 1; }
static inline void set_add(ByteSet *s, unsigned char c) { s->bits[c >> 6] |= (uint64_t)1 << (c & 63); }

/* LINE's classes (see the top of this file). */
static ByteSet NOT_SPACE;   /* [!-~]        */
static ByteSet NAME;        /* [!-9;-Z\\^-~] : not a space, ":", "[" or "]" */
static ByteSet HOST;        /* [!-9;=-Z\\^-~]: the same without "<"          */

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* The same classes as bits of one table, one load per byte on the hot path. */
enum { C_HOST = 1, C_NAME = 2, C_NOT_SPACE = 4, C_ALNUM = 8 };
static uint8_t CLASS[256];

static void add_range(ByteSet *s, unsigned char a, unsigned char b) {
    for (unsigned c = a; c <= b; c++) set_add(s, (unsigned char)c);
}

static void init_classes(void) {
    memset(&NOT_SPACE, 0, sizeof NOT_SPACE);
    add_range(&NOT_SPACE, '!', '~');
    memset(&NAME, 0, sizeof NAME);
    add_range(&NAME, '!', '9'); add_range(&NAME, ';', 'Z'); set_add(&NAME, '\\'); add_range(&NAME, '^', '~');
    memset(&HOST, 0, sizeof HOST);
    add_range(&HOST, '!', '9'); add_range(&HOST, ';', ';'); add_range(&HOST, '=', 'Z');
    set_add(&HOST, '\\'); add_range(&HOST, '^', '~');
    for (int c = 0; c < 256; c++) {
        unsigned char b = (unsigned char)c;
        CLASS[c] = (uint8_t)((set_has(&HOST, b) ? C_HOST : 0) | (set_has(&NAME, b) ? C_NAME : 0)
                             | (set_has(&NOT_SPACE, b) ? C_NOT_SPACE : 0)
                             | (is_digit(b) || (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') ? C_ALNUM : 0));
    }
}


static inline int is_alnum(unsigned char c) {
    return is_digit(c) || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* ------------------------------------------------------------------------------------ */
/* Prefilter patterns: a sequence of byte classes each                                    */

#define MAX_PATTERN 64

typedef struct {
    int length;
    int anchor;      /* the offset of the three steps searched for: the rarest in mail logs */
    ByteSet steps[MAX_PATTERN];
} Pattern;

/* A rough weight of how often a byte stands in a mail log, to pick each pattern's anchor. */
static double byte_weight(unsigned char c) {
    if (c == ' ') return 16;
    if (c >= 'a' && c <= 'z') return strchr("etaoinsrhldcmu", c) ? 6 : 2;
    if (c >= '0' && c <= '9') return 5;
    if (c >= 'A' && c <= 'Z') return 1;
    if (strchr(".:/-[]=,<>@_", c)) return 2;
    return 0.5;
}

static double step_weight(const ByteSet *s) {
    double w = 0;
    for (int c = 0; c < 256; c++)
        if (set_has(s, (unsigned char)c)) w += byte_weight((unsigned char)c);
    return w;
}

/* Three bytes -> an index into Scanner.anchors. */
static inline unsigned trigram_index(unsigned char a, unsigned char b, unsigned char c) {
    uint32_t key = (uint32_t)a << 16 | (uint32_t)b << 8 | c;
    return (key * 2654435761u) >> 16;
}

/* Compiles one pattern; returns 0, or -1 with a ValueError set. */
static int compile_pattern(PyObject *item, Pattern *out) {
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(item);
    Py_ssize_t n = PyBytes_GET_SIZE(item);
    int length = 0;
    Py_ssize_t i = 0;
    while (i < n) {
        if (length == MAX_PATTERN) {
            PyErr_Format(PyExc_ValueError, "prefilter pattern %R: too long for the scanner", item);
            return -1;
        }
        ByteSet *step = &out->steps[length];
        memset(step, 0, sizeof *step);
        unsigned char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n || is_alnum(p[i + 1])) {  /* \d, \s, \1 ...: not plain bytes */
                PyErr_Format(PyExc_ValueError, "prefilter pattern %R: unsupported escape", item);
                return -1;
            }
            set_add(step, p[i + 1]);
            i += 2;
        } else if (c == '[') {
            i++;
            if (i < n && p[i] == '^') {
                PyErr_Format(PyExc_ValueError, "prefilter pattern %R: negated class", item);
                return -1;
            }
            int members = 0;
            while (i < n && (p[i] != ']' || members == 0)) {
                unsigned char a = p[i];
                if (a == '\\') {
                    if (i + 1 >= n || is_alnum(p[i + 1])) {
                        PyErr_Format(PyExc_ValueError, "prefilter pattern %R: unsupported escape", item);
                        return -1;
                    }
                    a = p[++i];
                }
                if (i + 2 < n && p[i + 1] == '-' && p[i + 2] != ']') {
                    unsigned char b = p[i + 2];
                    if (b == '\\' || b < a) {
                        PyErr_Format(PyExc_ValueError, "prefilter pattern %R: unsupported range", item);
                        return -1;
                    }
                    add_range(step, a, b);
                    i += 3;
                } else {
                    set_add(step, a);
                    i++;
                }
                members++;
            }
            if (i >= n) {
                PyErr_Format(PyExc_ValueError, "prefilter pattern %R: unclosed class", item);
                return -1;
            }
            i++;  /* the "]" */
        } else if (strchr(".^$*+?{}()|]", c) != NULL) {
            PyErr_Format(PyExc_ValueError, "prefilter pattern %R: only bytes, \\-escapes and [classes]", item);
            return -1;
        } else {
            set_add(step, c);
            i++;
        }
        if (set_has(step, '\n')) {
            PyErr_Format(PyExc_ValueError, "prefilter pattern %R: matches a newline", item);
            return -1;
        }
        length++;
    }
    if (length < 3) {
        PyErr_Format(PyExc_ValueError, "prefilter pattern %R: shorter than three bytes", item);
        return -1;
    }
    out->length = length;
    out->anchor = 0;
    return 0;
}

static inline int pattern_at(const Pattern *pat, const unsigned char *s, const unsigned char *end) {
    if (end - s < pat->length) return 0;
    for (int k = 0; k < pat->length; k++)
        if (!set_has(&pat->steps[k], s[k])) return 0;
    return 1;
}

/* ------------------------------------------------------------------------------------ */
/* A small hash table: byte-string keys in an arena, two 64-bit values each              */

typedef struct {
    uint64_t hash;
    size_t key;      /* offset in the arena; (size_t)-1 when the slot is empty */
    size_t length;
    uint64_t a, b;
} Slot;

typedef struct {
    Slot *slots;
    size_t capacity;  /* a power of two */
    size_t used;
    size_t *order;    /* slot indexes in insertion order */
    char *arena;
    size_t arena_used, arena_size;
} Table;

static uint64_t hash_bytes(const unsigned char *s, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    while (n >= 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t x = 0;
    memcpy(&x, s, n);
    h = (h ^ x) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static int table_init(Table *t) {
    t->capacity = 64;
    t->used = 0;
    t->slots = malloc(t->capacity * sizeof(Slot));
    t->order = malloc(t->capacity * sizeof(size_t));
    t->arena_size = 4096;
    t->arena_used = 0;
    t->arena = malloc(t->arena_size);
    if (!t->slots || !t->order || !t->arena) return -1;
    for (size_t i = 0; i < t->capacity; i++) t->slots[i].key = (size_t)-1;
    return 0;
}

static void table_free(Table *t) {
    free(t->slots); free(t->order); free(t->arena);
    t->slots = NULL; t->order = NULL; t->arena = NULL;
}

static int table_grow(Table *t) {
    size_t capacity = t->capacity * 2;
    Slot *slots = malloc(capacity * sizeof(Slot));
    size_t *order = malloc(capacity * sizeof(size_t));
    if (!slots || !order) { free(slots); free(order); return -1; }
    for (size_t i = 0; i < capacity; i++) slots[i].key = (size_t)-1;
    for (size_t k = 0; k < t->used; k++) {
        Slot *old = &t->slots[t->order[k]];
        size_t j = old->hash & (capacity - 1);
        while (slots[j].key != (size_t)-1) j = (j + 1) & (capacity - 1);
        slots[j] = *old;
        order[k] = j;
    }
    free(t->slots); free(t->order);
    t->slots = slots; t->order = order; t->capacity = capacity;
    return 0;
}

/* The slot for key, added (values 0) when new; NULL when out of memory. */
static Slot *table_get(Table *t, const unsigned char *key, size_t n, int *is_new) {
    uint64_t h = hash_bytes(key, n);
    size_t j = h & (t->capacity - 1);
    while (t->slots[j].key != (size_t)-1) {
        Slot *s = &t->slots[j];
        if (s->hash == h && s->length == n && memcmp(t->arena + s->key, key, n) == 0) {
            *is_new = 0;
            return s;
        }
        j = (j + 1) & (t->capacity - 1);
    }
    if ((t->used + 1) * 2 > t->capacity) {
        if (table_grow(t) < 0) return NULL;
        return table_get(t, key, n, is_new);
    }
    if (t->arena_used + n > t->arena_size) {
        size_t size = t->arena_size * 2;
        while (size < t->arena_used + n) size *= 2;
        char *arena = realloc(t->arena, size);
        if (!arena) return NULL;
        t->arena = arena; t->arena_size = size;
    }
    memcpy(t->arena + t->arena_used, key, n);
    Slot *s = &t->slots[j];
    s->hash = h; s->key = t->arena_used; s->length = n; s->a = 0; s->b = 0;
    t->arena_used += n;
    t->order[t->used++] = j;
    *is_new = 1;
    return s;
}

/* ------------------------------------------------------------------------------------ */
/* The scanner object                                                                    */

#define MAX_WORDS 32
#define MAX_THREADS 4
#define PART_BYTES (128 * 1024)   /* the least a thread is given to read */
#define MAX_PATTERNS 64
#define TUNE_BYTES (256 * 1024)  /* a chunk this large picks the anchors from its bytes */
#define MAX_PROGRAMS 64
#define MAX_EXIM_PROGRAMS 8

typedef struct {
    PyObject_HEAD
    int n_patterns;
    Pattern *patterns;
    uint8_t anchors[65536];        /* [trigram_index()]: 1 when it may be some pattern's anchor */
    int tuned;                     /* 1 once the anchors were chosen from a real chunk's bytes */
    int busy;                      /* scans under way without the GIL (changed only with it held) */
    int n_words;
    char words[MAX_WORDS][32];     /* status= words with an outcome */
    int word_len[MAX_WORDS];
    int word_outcome[MAX_WORDS];   /* the first word index with the same outcome: what a key holds */
    PyObject *outcomes;            /* tuple: outcome str per word index, then the reject outcome */
    int n_programs;
    char *programs[MAX_PROGRAMS];  /* exact program names with a "/" that some parser claims */
    int program_len[MAX_PROGRAMS];
    PyObject *mta;
    int threads;                   /* how many threads may read one chunk */
    int grammar;                   /* GRAMMAR_SYSLOG or GRAMMAR_EXIM: what read_line reads */
    int exim_flag[5];              /* GRAMMAR_EXIM: word index of the flags in EXIM_FLAGS' order */
    int exim_expired;              /* GRAMMAR_EXIM: word index of "expired" */
    int n_exim_programs;           /* GRAMMAR_SYSLOG: exact program names whose lines exim.py reads */
    char exim_programs[MAX_EXIM_PROGRAMS][32];
    int exim_program_len[MAX_EXIM_PROGRAMS];
    PyObject *mtas;                /* tuple: the mta of a key's mta byte (0: mta, 1: exim_mta) */
} Scanner;

enum { GRAMMAR_SYSLOG = 0, GRAMMAR_EXIM = 1 };
/* Exim's delivery flags, in the order of Scanner.exim_flag. */
static const char *const EXIM_FLAGS[5] = {"**", "==", "=>", "->", ">>"};

static void Scanner_dealloc(Scanner *self) {
    free(self->patterns);
    for (int i = 0; i < self->n_programs; i++) free(self->programs[i]);
    Py_XDECREF(self->outcomes);
    Py_XDECREF(self->mta);
    Py_XDECREF(self->mtas);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Picks each pattern's anchor (the three steps searched for) and fills the search tables.
 * freq, when given, counts the trigram_index() of every position of a real chunk: the
 * anchor is then the one least seen there; without it, a rough weight per byte decides. */
/* Every trigram the three steps at s admit: their counts in freq summed (when freq is given),
 * and each marked in mark (when mark is given). */
static double visit_trigrams(const ByteSet *s, const uint32_t *freq, uint8_t *mark) {
    double seen = 0;
    for (int a = 0; a < 256; a++) {
        if (!set_has(&s[0], (unsigned char)a)) continue;
        for (int b = 0; b < 256; b++) {
            if (!set_has(&s[1], (unsigned char)b)) continue;
            for (int c = 0; c < 256; c++) {
                if (!set_has(&s[2], (unsigned char)c)) continue;
                unsigned index = trigram_index((unsigned char)a, (unsigned char)b, (unsigned char)c);
                if (freq != NULL) seen += freq[index];
                if (mark != NULL) mark[index] = 1;
            }
        }
    }
    return seen;
}

static void choose_anchors(Scanner *self, const uint32_t *freq) {
    memset(self->anchors, 0, sizeof self->anchors);
    for (int i = 0; i < self->n_patterns; i++) {
        Pattern *p = &self->patterns[i];
        double best = -1;
        for (int k = 0; k + 3 <= p->length; k++) {
            const ByteSet *s0 = &p->steps[k];
            double w = step_weight(s0) * step_weight(s0 + 1) * step_weight(s0 + 2);
            if (freq != NULL)   /* seen count first, the weight only to break ties */
                w += visit_trigrams(s0, freq, NULL) * 1e6;
            if (best < 0 || w < best) { best = w; p->anchor = k; }
        }
        visit_trigrams(&p->steps[p->anchor], NULL, self->anchors);
    }
}

/* Chooses the anchors again from the bytes of a real chunk (once, from the first large one). */
static int tune_anchors(Scanner *self, const unsigned char *chunk, Py_ssize_t size) {
    uint32_t *freq = calloc(65536, sizeof(uint32_t));
    if (!freq) return -1;
    for (Py_ssize_t i = 0; i + 2 < size; i++) freq[trigram_index(chunk[i], chunk[i + 1], chunk[i + 2])]++;
    choose_anchors(self, freq);
    free(freq);
    self->tuned = 1;
    return 0;
}

/* The CPUs this process may run on (its affinity mask, as a container's cpuset sets it). */
static int usable_cpus(void) {
#ifdef CPU_COUNT
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
#endif
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static int Scanner_init(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"patterns", "programs", "status_outcomes", "reject_outcome", "mta", "threads", "grammar",
                            "exim_programs", "exim_outcomes", "exim_mta", NULL};
    PyObject *patterns, *programs, *status_outcomes, *reject_outcome, *mta;
    PyObject *exim_programs = NULL, *exim_outcomes = NULL, *exim_mta = NULL;
    int threads = 0;
    const char *grammar = "syslog";
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO!UU|isOO!U", names, &patterns, &programs,
                                     &PyDict_Type, &status_outcomes, &reject_outcome, &mta, &threads, &grammar,
                                     &exim_programs, &PyDict_Type, &exim_outcomes, &exim_mta))
        return -1;
    if (strcmp(grammar, "syslog") == 0) self->grammar = GRAMMAR_SYSLOG;
    else if (strcmp(grammar, "exim") == 0) self->grammar = GRAMMAR_EXIM;
    else { PyErr_Format(PyExc_ValueError, "grammar %s: not syslog or exim", grammar); return -1; }
    if (threads <= 0) threads = usable_cpus();
    self->threads = threads > MAX_THREADS ? MAX_THREADS : threads;
    PyObject *pat_seq = PySequence_Fast(patterns, "patterns must be a sequence of bytes");
    if (!pat_seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(pat_seq);
    if (n > MAX_PATTERNS) { Py_DECREF(pat_seq); PyErr_SetString(PyExc_ValueError, "too many patterns"); return -1; }
    self->patterns = calloc(n > 0 ? n : 1, sizeof(Pattern));
    if (!self->patterns) { Py_DECREF(pat_seq); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(pat_seq, i);
        if (!PyBytes_Check(item)) {
            Py_DECREF(pat_seq);
            PyErr_SetString(PyExc_TypeError, "patterns must be bytes");
            return -1;
        }
        if (compile_pattern(item, &self->patterns[i]) < 0) {
            Py_DECREF(pat_seq);
            return -1;
        }
    }
    Py_DECREF(pat_seq);
    self->n_patterns = (int)n;
    choose_anchors(self, NULL);

    PyObject *prog_seq = PySequence_Fast(programs, "programs must be a sequence of str");
    if (!prog_seq) return -1;
    Py_ssize_t np = PySequence_Fast_GET_SIZE(prog_seq);
    if (np > MAX_PROGRAMS) { Py_DECREF(prog_seq); PyErr_SetString(PyExc_ValueError, "too many programs"); return -1; }
    for (Py_ssize_t i = 0; i < np; i++) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(prog_seq, i), &len);
        if (!s) { Py_DECREF(prog_seq); return -1; }
        if (memchr(s, '/', len) == NULL) continue;   /* read_fast only asks about names with a "/" */
        int k = self->n_programs;
        self->programs[k] = malloc(len + 1);
        if (!self->programs[k]) { Py_DECREF(prog_seq); PyErr_NoMemory(); return -1; }
        memcpy(self->programs[k], s, len + 1);
        self->program_len[k] = (int)len;
        self->n_programs = k + 1;
    }
    Py_DECREF(prog_seq);

    Py_ssize_t nw = PyDict_Size(status_outcomes);
    if (nw > MAX_WORDS) { PyErr_SetString(PyExc_ValueError, "too many status words"); return -1; }
    /* GRAMMAR_SYSLOG with exim_programs: Exim's delivery lines through syslog are read too, their
     * flags' and expiry's outcomes (exim_outcomes) after the reject outcome */
    Py_ssize_t n_exim = 0;
    if (self->grammar == GRAMMAR_SYSLOG && exim_programs != NULL) {
        PyObject *seq = PySequence_Fast(exim_programs, "exim_programs must be a sequence of str");
        if (!seq) return -1;
        n_exim = PySequence_Fast_GET_SIZE(seq);
        if (n_exim > MAX_EXIM_PROGRAMS || (n_exim > 0 && (exim_outcomes == NULL || exim_mta == NULL))) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "exim_programs: at most 8, with exim_outcomes and exim_mta");
            return -1;
        }
        for (Py_ssize_t i = 0; i < n_exim; i++) {
            Py_ssize_t len;
            const char *name = PyUnicode_AsUTF8AndSize(PySequence_Fast_GET_ITEM(seq, i), &len);
            if (!name || len >= 32 || len == 0) {
                Py_DECREF(seq);
                if (name) PyErr_SetString(PyExc_ValueError, "exim program name too long");
                return -1;
            }
            memcpy(self->exim_programs[i], name, len);
            self->exim_program_len[i] = (int)len;
        }
        Py_DECREF(seq);
        self->n_exim_programs = (int)n_exim;
    }
    self->outcomes = PyTuple_New(nw + 1 + (n_exim > 0 ? 6 : 0));
    if (!self->outcomes) return -1;
    Py_ssize_t pos = 0;
    PyObject *word, *outcome;
    int w = 0;
    while (PyDict_Next(status_outcomes, &pos, &word, &outcome)) {
        Py_ssize_t len;
        const char *s = PyUnicode_AsUTF8AndSize(word, &len);
        if (!s || !PyUnicode_Check(outcome)) {
            if (s) PyErr_SetString(PyExc_TypeError, "status_outcomes maps str to str");
            return -1;
        }
        if (len >= 32) { PyErr_SetString(PyExc_ValueError, "status word too long"); return -1; }
        memcpy(self->words[w], s, len);
        self->word_len[w] = (int)len;
        Py_INCREF(outcome);
        PyTuple_SET_ITEM(self->outcomes, w, outcome);
        w++;
    }
    self->n_words = w;
    if (self->grammar == GRAMMAR_EXIM) {   /* each delivery flag's outcome, and the expiry's */
        for (int f = 0; f < 6; f++) {
            const char *name = f < 5 ? EXIM_FLAGS[f] : "expired";
            int found = -1;
            for (int k = 0; k < w; k++)
                if (self->word_len[k] == (int)strlen(name) && memcmp(self->words[k], name, strlen(name)) == 0) found = k;
            if (found < 0) {
                PyErr_Format(PyExc_ValueError, "grammar exim: status_outcomes has no %s", name);
                return -1;
            }
            if (f < 5) self->exim_flag[f] = found;
            else self->exim_expired = found;
        }
    }
    Py_INCREF(reject_outcome);
    PyTuple_SET_ITEM(self->outcomes, w, reject_outcome);
    /* Words with the same outcome (Postfix's deferred and SOFTBOUNCE, Exim's => -> >>) count under
     * the first one's index: the tally has one key per outcome, and so must the scanner's keys. */
    for (int k = 0; k < w; k++) {
        self->word_outcome[k] = k;
        for (int j = 0; j < k; j++) {
            int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(self->outcomes, j),
                                                PyTuple_GET_ITEM(self->outcomes, k), Py_EQ);
            if (same < 0) return -1;
            if (same) { self->word_outcome[k] = j; break; }
        }
    }
    if (self->grammar == GRAMMAR_EXIM) {
        for (int f = 0; f < 5; f++) self->exim_flag[f] = self->word_outcome[self->exim_flag[f]];
        self->exim_expired = self->word_outcome[self->exim_expired];
    }
    if (n_exim > 0) {   /* each flag's and the expiry's outcome, under the first index of that outcome */
        for (int f = 0; f < 6; f++) {
            const char *name = f < 5 ? EXIM_FLAGS[f] : "expired";
            PyObject *value = PyDict_GetItemString(exim_outcomes, name);
            if (value == NULL || !PyUnicode_Check(value)) {
                PyErr_Format(PyExc_ValueError, "exim_outcomes has no %s", name);
                return -1;
            }
            Py_INCREF(value);
            PyTuple_SET_ITEM(self->outcomes, w + 1 + f, value);
            int index = w + 1 + f;
            for (int j = 0; j < w + 1 + f; j++) {
                int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(self->outcomes, j), value, Py_EQ);
                if (same < 0) return -1;
                if (same) { index = j; break; }
            }
            if (f < 5) self->exim_flag[f] = index;
            else self->exim_expired = index;
        }
    }
    Py_INCREF(mta);
    self->mta = mta;
    self->mtas = PyTuple_Pack(2, mta, n_exim > 0 ? exim_mta : mta);
    if (!self->mtas) return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Candidate test: does any prefilter pattern occur in [s, end)?                          */

/* Whether some pattern stands with its anchor at q (and wholly inside [s, end)). */
static int pattern_near(const Scanner *self, const unsigned char *q, const unsigned char *s, const unsigned char *end) {
    for (int i = 0; i < self->n_patterns; i++) {
        const Pattern *pat = &self->patterns[i];
        if (q - s >= pat->anchor && pattern_at(pat, q - pat->anchor, end)) return 1;
    }
    return 0;
}

/* Whether any prefilter pattern stands in the line [s, end). */
static int any_pattern(const Scanner *self, const unsigned char *s, const unsigned char *end) {
    const unsigned char *q = s;
    /* 16 positions at a time without a branch: most blocks hold no anchor */
    while (end - q >= 18) {
        unsigned hit = 0;
        for (int k = 0; k < 16; k++) hit |= self->anchors[trigram_index(q[k], q[k + 1], q[k + 2])];
        if (hit)
            for (int k = 0; k < 16; k++)
                if (self->anchors[trigram_index(q[k], q[k + 1], q[k + 2])] && pattern_near(self, q + k, s, end))
                    return 1;
        q += 16;
    }
    for (; end - q >= 3; q++)
        if (self->anchors[trigram_index(q[0], q[1], q[2])] && pattern_near(self, q, s, end)) return 1;
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Reading one line: LINE, then what postfix.delivery() / postfix.reject() make of it       */

typedef struct { const unsigned char *s; Py_ssize_t n; } Span;

enum { NOT_FAST = 0, FAST_EVENT = 1, FAST_UNPARSED = 2, FAST_IGNORED = 3 };

typedef struct {
    int outcome;            /* index into Scanner.outcomes */
    Span code, reply, remote;  /* n < 0: None */
    Span minute;            /* stamp text without its two digits of seconds */
    int second;             /* 0..99 */
    unsigned char minute_text[24];  /* GRAMMAR_EXIM: the minute's text (date to the minute, then the zone) */
    int mta;                /* index into Scanner.mtas */
    int forget;             /* an Exim line through syslog read here: exim.py's memory of the last
                             * rejection must be dropped before the next line Python reads */
} Fast;

/* Inlined everywhere: with a literal its loop unrolls into a few compares. */
static inline __attribute__((always_inline)) int starts(const unsigned char *p, const unsigned char *end,
                                                       const char *lit, size_t n) {
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] != (unsigned char)lit[i]) return 0;
    return 1;
}

/* True when every byte of [s, end) is printable ASCII (" " to "~"); eight bytes at a time. */
static int printable(const unsigned char *s, const unsigned char *end) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    while (end - s >= 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        /* a byte below 0x20, or above 0x7e (0x7f, or any with its high bit set) */
        if ((((x - 0x20 * ones) & ~x) | ((x + ones) | x)) & highs) return 0;
        s += 8;
    }
    for (; s < end; s++)
        if (*s < ' ' || *s > '~') return 0;
    return 1;
}

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

/* codes.is_valid_code: [245]\.(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2}) and nothing else. */
static int valid_code(const unsigned char *s, Py_ssize_t n) {
    if (n < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return 0;
    Py_ssize_t i = 2;
    for (int part = 0; part < 2; part++) {
        Py_ssize_t start = i;
        while (i < n && is_digit(s[i])) i++;
        Py_ssize_t len = i - start;
        if (len < 1 || len > 3 || (len > 1 && s[start] == '0')) return 0;
        if (part == 0) { if (i >= n || s[i] != '.') return 0; i++; }
    }
    return i == n;
}

/* "[2-5][0-9]{2}" */
static inline int valid_reply(const unsigned char *s) {
    return s[0] >= '2' && s[0] <= '5' && is_digit(s[1]) && is_digit(s[2]);
}

/* The length of "[0-9]+\.[0-9]+\.[0-9]+(?![0-9.])" at s, or 0. */
static Py_ssize_t dotted_code(const unsigned char *s, const unsigned char *end) {
    const unsigned char *p = s;
    for (int part = 0; part < 3; part++) {
        const unsigned char *start = p;
        while (p < end && is_digit(*p)) p++;
        if (p == start) return 0;
        if (part < 2) { if (p >= end || *p != '.') return 0; p++; }
    }
    if (p < end && (is_digit(*p) || *p == '.')) return 0;
    return p - s;
}

/* postfix._relay_host */
static Span relay_host(Span relay) {
    Span none = {NULL, -1};
    const unsigned char *bracket = memchr(relay.s, '[', relay.n);
    if (bracket == NULL || bracket == relay.s) return none;
    Py_ssize_t at = bracket - relay.s;
    if (memchr(bracket, '/', relay.n - at) != NULL) return none;
    if (at == 7 && memcmp(relay.s, "unknown", 7) == 0) {
        const unsigned char *close = memchr(bracket, ']', relay.n - at);
        if (close == NULL || close - relay.s <= at + 1) return none;
        Span address = {bracket + 1, close - bracket - 1};
        return address;
    }
    Span host = {relay.s, at};
    return host;
}

/* postfix._client_host */
static Span client_host(Span client) {
    Span none = {NULL, -1};
    const unsigned char *bracket = memchr(client.s, '[', client.n);
    if (bracket == NULL) return none;
    Py_ssize_t at = bracket - client.s;
    const unsigned char *close = memchr(bracket, ']', client.n - at);
    if (close == NULL) return none;
    if (at > 0 && !(at == 7 && memcmp(client.s, "unknown", 7) == 0)) {
        Span name = {client.s, at};
        return name;
    }
    if (close - bracket - 1 <= 0) return none;
    Span address = {bracket + 1, close - bracket - 1};
    return address;
}

/* The first occurrence of needle (n bytes) in [s, end): memchr for its byte at offset k (a
 * rare one), then a compare around each hit. For the short lines and needles here this is
 * several times faster than memmem, which prepares a table on every call. */
static const unsigned char *find(const unsigned char *s, const unsigned char *end, const char *needle,
                                 size_t n, size_t k) {
    const unsigned char *p = s + k;
    while (p < end) {
        const unsigned char *hit = memchr(p, (unsigned char)needle[k], end - p);
        if (hit == NULL) return NULL;
        const unsigned char *at = hit - k;
        if ((size_t)(end - at) >= n && memcmp(at, needle, n) == 0) return at;
        p = hit + 1;
    }
    return NULL;
}

/* The reply of a delivery record's reason: postfix._SAID, else _REPLY_AT_START; n < 0 when none. */
static Span reason_reply(Span reason) {
    Span none = {NULL, -1};
    const unsigned char *s = reason.s, *end = reason.s + reason.n;
    /* the leftmost " said: NNN" or " refused to talk to me: NNN" followed by " ", "-" or the end */
    static const char *const lead[2] = {" said: ", " refused to talk to me: "};
    const unsigned char *first = NULL;
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(lead[k]);
        const unsigned char *p = s;
        while (p < end) {
            const unsigned char *at = find(p, end, lead[k], n, n - 2);   /* at its ":" */
            if (at == NULL || (first != NULL && at >= first)) break;
            const unsigned char *q = at + n;
            if (end - q >= 3 && is_digit(q[0]) && is_digit(q[1]) && is_digit(q[2])
                && (q + 3 == end || q[3] == ' ' || q[3] == '-')) {
                first = at;
                break;
            }
            p = at + 1;
        }
    }
    if (first != NULL) {
        const unsigned char *q = first + (first[1] == 's' ? 7 : 24);
        Span reply = {q, 3};
        return valid_reply(q) ? reply : none;
    }
    if (reason.n >= 4 && s[0] >= '2' && s[0] <= '5' && is_digit(s[1]) && is_digit(s[2])
        && (s[3] == ' ' || s[3] == '-')) {
        Span reply = {s, 3};
        return reply;
    }
    return none;
}

/* The first occurrence of ", " at or after p with no space before it: the end of a lazy
 * "[!-~]*?, " (NULL when the first space is not preceded by ","). */
static const unsigned char *lazy_field_end(const unsigned char *p, const unsigned char *end) {
    const unsigned char *space = memchr(p, ' ', end - p);
    if (space == NULL || space == p || space[-1] != ',') return NULL;
    return space - 1;
}

static int delivery_at(const unsigned char *p, const unsigned char *end, const unsigned char **after);
static int exim_delivery(const Scanner *self, const unsigned char *s, const unsigned char *p,
                         const unsigned char *end, int flag, Fast *out);

/* Reads one line [s, end) (end at its newline or the chunk's end). */
static int read_fast(const Scanner *self, const unsigned char *s, const unsigned char *end, Fast *out) {
    const unsigned char *p = s;
    out->mta = 0;
    out->forget = 0;
    /* stamp: month, " {1,2}", day "[0-9]{1,2}", " HH:MM:SS " */
    if (end - p < 16) return NOT_FAST;
    int month = -1;
    for (int m = 0; m < 12; m++)
        if (p[0] == MONTHS[3 * m] && p[1] == MONTHS[3 * m + 1] && p[2] == MONTHS[3 * m + 2]) { month = m; break; }
    if (month < 0) return NOT_FAST;
    p += 3;
    if (*p != ' ') return NOT_FAST;
    p++;
    if (*p == ' ') p++;
    if (!is_digit(*p)) return NOT_FAST;
    p++;
    if (is_digit(*p)) p++;
    if (end - p < 10 || p[0] != ' ' || !is_digit(p[1]) || !is_digit(p[2]) || p[3] != ':'
        || !is_digit(p[4]) || !is_digit(p[5]) || p[6] != ':' || !is_digit(p[7]) || !is_digit(p[8]) || p[9] != ' ')
        return NOT_FAST;
    out->minute.s = s;
    out->minute.n = (p + 7) - s;
    out->second = (p[7] - '0') * 10 + (p[8] - '0');
    p += 10;
    /* host: "[!-9;=-Z\\^-~]+ " */
    const unsigned char *host = p;
    while (p < end && (CLASS[*p] & C_HOST)) p++;
    if (p == host || p >= end || *p != ' ') return NOT_FAST;
    p++;
    /* program: a run of NAME holding a "/" (or one of exim_programs), then "[pid]: " */
    const unsigned char *prog = p;
    while (p < end && (CLASS[*p] & C_NAME)) p++;
    Py_ssize_t prog_len = p - prog;
    if (prog_len == 0) return NOT_FAST;
    int exim = 0;
    if (memchr(prog, '/', prog_len) == NULL) {   /* not Postfix's: one of Exim's, or the general path */
        for (int i = 0; i < self->n_exim_programs; i++)
            if (self->exim_program_len[i] == prog_len && memcmp(self->exim_programs[i], prog, prog_len) == 0) exim = 1;
        if (!exim) return NOT_FAST;
    }
    if (p >= end || *p != '[') return NOT_FAST;
    p++;
    const unsigned char *pid = p;
    while (p < end && is_digit(*p)) p++;
    if (p == pid || end - p < 3 || p[0] != ']' || p[1] != ':' || p[2] != ' ') return NOT_FAST;
    p += 3;
    const unsigned char *message = p;
    /* the whole line printable ASCII, as every class of LINE is */
    if (!printable(s, end)) return NOT_FAST;
    if (exim) {
        /* exim.parse_message: with no part marker, date or [pid] before it (_SYSLOG_PREFIX takes
         * nothing: the message starts with neither "[" nor "dddd-"), a delivery line is read as
         * parse_body(message, 0) reads it; any other Exim line goes to Python */
        if (p < end && *p == '[') return NOT_FAST;
        if (end - p >= 5 && is_digit(p[0]) && is_digit(p[1]) && is_digit(p[2]) && is_digit(p[3]) && p[4] == '-')
            return NOT_FAST;
        const unsigned char *after;
        int flag = delivery_at(p, end, &after);
        if (flag < 0) return NOT_FAST;
        out->mta = 1;
        out->forget = 1;   /* a delivery, never a rejection: exim.py forgets the last one */
        return exim_delivery(self, message, after, end, flag, out);
    }
    /* a program that another parser claims by its exact name: the general path decides */
    for (int i = 0; i < self->n_programs; i++)
        if (self->program_len[i] == prog_len && memcmp(self->programs[i], prog, prog_len) == 0) return NOT_FAST;
    /* Postfix's line (a "/" in the program name), so on the general path only the Postfix
     * parser sees its message (syslog._dispatch), and that parser reads nothing in a message
     * without "status=" or "reject: " (postfix.parse_message): the line is ignored, whatever
     * else it holds. Most lines of a Postfix log end here, without the prefilter search. */
    if (find(message, end, "status=", 7, 6) == NULL && find(message, end, "reject: ", 8, 6) == NULL)
        return FAST_IGNORED;
    /* queue id (or NOQUEUE): "[0-9A-Za-z]+" */
    const unsigned char *qid = p;
    while (p < end && (CLASS[*p] & C_ALNUM)) p++;
    if (p == qid) return NOT_FAST;
    if (starts(p, end, ": to=<", 6)) {
        /* delivery: ": to=<...>, [orig_to=<...>, ]relay=R, [conn_use=N, ]delay=D, delays=a/b/c/d, [tls=T, ]dsn=X, status=W[ (reason)]" */
        p += 6;
        const unsigned char *close = find(p, end, ">, ", 3, 0);
        if (close == NULL) return NOT_FAST;
        p = close + 3;
        if (starts(p, end, "orig_to=<", 9)) {
            close = find(p + 9, end, ">, ", 3, 0);
            if (close == NULL) return NOT_FAST;
            p = close + 3;
        }
        if (!starts(p, end, "relay=", 6)) return NOT_FAST;
        p += 6;
        Span relay = {p, 0};
        const unsigned char *comma = lazy_field_end(p, end);
        if (comma == NULL) return NOT_FAST;
        relay.n = comma - p;
        p = comma + 2;
        if (starts(p, end, "conn_use=", 9)) {
            p += 9;
            const unsigned char *digits = p;
            while (p < end && is_digit(*p)) p++;
            if (p == digits || !starts(p, end, ", ", 2)) return NOT_FAST;
            p += 2;
        }
        if (!starts(p, end, "delay=", 6)) return NOT_FAST;
        p += 6;
        for (int part = 0; part < 5; part++) {
            if (part == 1) {
                if (!starts(p, end, "delays=", 7)) return NOT_FAST;
                p += 7;
            }
            const unsigned char *number = p;
            while (p < end && (is_digit(*p) || *p == '.')) p++;
            if (p == number) return NOT_FAST;
            if (part == 0 || part == 4) {
                if (!starts(p, end, ", ", 2)) return NOT_FAST;
                p += 2;
            } else if (part >= 1 && part <= 3) {
                if (p >= end || *p != '/') return NOT_FAST;
                p++;
            }
        }
        if (starts(p, end, "tls=", 4)) {
            comma = lazy_field_end(p + 4, end);
            if (comma == NULL) return NOT_FAST;
            p = comma + 2;
        }
        if (!starts(p, end, "dsn=", 4)) return NOT_FAST;
        p += 4;
        Span dsn = {p, 0};
        while (p < end && *p != ',' && (CLASS[*p] & C_NOT_SPACE)) p++;
        dsn.n = p - dsn.s;
        if (!starts(p, end, ", status=", 9)) return NOT_FAST;
        p += 9;
        const unsigned char *word = p;
        while (p < end && ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || *p == '-')) p++;
        Py_ssize_t word_len = p - word;
        if (word_len == 0) return NOT_FAST;
        Span reason = {NULL, -1};
        if (p < end) {
            if (end - p < 3 || p[0] != ' ' || p[1] != '(' || end[-1] != ')') return NOT_FAST;
            reason.s = p + 2;
            reason.n = (end - 1) - (p + 2);
        }
        /* postfix.delivery() */
        int outcome = -1;
        for (int w = 0; w < self->n_words; w++)
            if (self->word_len[w] == word_len && memcmp(self->words[w], word, word_len) == 0) { outcome = w; break; }
        if (outcome < 0 || !valid_code(dsn.s, dsn.n)) return FAST_UNPARSED;
        Span empty = {(const unsigned char *)"", 0};
        out->outcome = self->word_outcome[outcome];
        out->code = dsn;
        out->reply = reason_reply(reason.n >= 0 ? reason : empty);
        out->remote = relay_host(relay);
        return FAST_EVENT;
    }
    /* reject: ": reject: " or ": milter-reject: ", "[A-Z][A-Z-]* from CLIENT: TEXT", in a
     * message without "status=" (LINE tries the delivery record first, and a message that
     * holds "status=" cannot be a reject there) */
    if (starts(p, end, ": reject: ", 10)) p += 10;
    else if (starts(p, end, ": milter-reject: ", 17)) p += 17;
    else return NOT_FAST;
    if (find(message, end, "status=", 7, 6) != NULL) return NOT_FAST;
    if (p >= end || !(*p >= 'A' && *p <= 'Z')) return NOT_FAST;
    while (p < end && ((*p >= 'A' && *p <= 'Z') || *p == '-')) p++;
    if (!starts(p, end, " from ", 6)) return NOT_FAST;
    p += 6;
    /* "[!-~]+?: ": the first ": " with no space before it and at least one byte */
    const unsigned char *space = memchr(p, ' ', end - p);
    if (space == NULL || space - p < 2 || space[-1] != ':') return NOT_FAST;
    Span client = {p, (space - 1) - p};
    Span text = {space + 1, end - (space + 1)};
    /* postfix._reply_and_code() */
    const unsigned char *t = text.s, *tend = text.s + text.n;
    Span none = {NULL, -1};
    out->reply = none;
    out->code = none;
    if (text.n >= 3 && is_digit(t[0]) && is_digit(t[1]) && is_digit(t[2])) {
        Py_ssize_t code_len = 0;
        if (text.n > 3 && (t[3] == ' ' || t[3] == '-')) code_len = dotted_code(t + 4, tend);
        if (code_len > 0) {
            out->reply.s = t; out->reply.n = 3;
            out->code.s = t + 4; out->code.n = code_len;
        } else if (text.n == 3 || !(is_digit(t[3]) || t[3] == '.')) {
            out->reply.s = t; out->reply.n = 3;
        }
    }
    if (out->reply.n >= 0) {
        if (!valid_reply(out->reply.s) || (out->code.n >= 0 && !valid_code(out->code.s, out->code.n)))
            return FAST_UNPARSED;
    } else {
        Py_ssize_t code_len = dotted_code(t, tend);
        if (code_len > 0) {
            if (!valid_code(t, code_len)) return FAST_UNPARSED;
            out->code.s = t; out->code.n = code_len;
        }
    }
    out->outcome = self->n_words;  /* the reject outcome */
    out->remote = client_host(client);
    return FAST_EVENT;
}

/* ------------------------------------------------------------------------------------ */
/* Exim's mainlog (grammar "exim"): exim_files._LINE, then what exim.parse_body makes of it */
/*
 * exim_files.EximMainlogParser.parse() reads a line that holds one of its marks and that
 * _LINE matches: the date, an optional fraction, zone and [pid], a space, then (the
 * lookahead) a message id and a delivery flag, or "rejected " later on. read_exim() tells
 * apart, for every line:
 *   - lines Python ignores whatever their bytes: no date at the start, or (on every path
 *     _LINE could take through the optional parts) neither an id and a flag nor any
 *     "rejected " (FAST_IGNORED);
 *   - lines it reads as Python does (FAST_EVENT, FAST_UNPARSED, or FAST_IGNORED for a line
 *     exim.parse_body() returns None for): printable ASCII (so the line decodes, and the
 *     str patterns' \s and \S are " " and [!-~]), no fraction, a minute and second below 60,
 *     and _LINE's first path through the optional parts (zone, then pid) matching;
 *   - every other line goes back to Python (NOT_FAST), which reads it.
 * Each pattern of exim.py below is read the one way it can match: every repetition in them
 * is followed by a byte it cannot take, so the longest run is the only run (the comments
 * say where that needs an argument).
 */

static inline int is_hex_or_dot(unsigned char c) {   /* [0-9A-Fa-f:.] */
    return is_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f') || c == ':' || c == '.';
}

/* exim.MESSAGE_ID at p: its length (16 or 23), or 0. The two forms differ at their 14th
 * byte ("-" or not), so at most one can match. */
static Py_ssize_t message_id_at(const unsigned char *p, const unsigned char *end) {
    if (end - p < 16) return 0;
    for (int i = 0; i < 6; i++) if (!(CLASS[p[i]] & C_ALNUM)) return 0;
    if (p[6] != '-') return 0;
    if (p[13] == '-') {
        for (int i = 7; i < 13; i++) if (!(CLASS[p[i]] & C_ALNUM)) return 0;
        return (CLASS[p[14]] & C_ALNUM) && (CLASS[p[15]] & C_ALNUM) ? 16 : 0;
    }
    if (end - p < 23) return 0;
    for (int i = 7; i < 18; i++) if (!(CLASS[p[i]] & C_ALNUM)) return 0;
    if (p[18] != '-') return 0;
    for (int i = 19; i < 23; i++) if (!(CLASS[p[i]] & C_ALNUM)) return 0;
    return 23;
}

/* exim._DELIVERY at p ("ID FLAG "): the flag's index in EXIM_FLAGS, the text after it in *after; or -1. */
static int delivery_at(const unsigned char *p, const unsigned char *end, const unsigned char **after) {
    Py_ssize_t id = message_id_at(p, end);
    if (id == 0 || end - (p + id) < 4 || p[id] != ' ' || p[id + 3] != ' ') return -1;
    for (int f = 0; f < 5; f++)
        if (p[id + 1] == (unsigned char)EXIM_FLAGS[f][0] && p[id + 2] == (unsigned char)EXIM_FLAGS[f][1]) {
            *after = p + id + 4;
            return f;
        }
    return -1;
}

/* "[245]\.[0-9]{1,3}\.[0-9]{1,3}(?![0-9]|\.[0-9])" at p (smtp_reply's code): its length, or 0. */
static Py_ssize_t code_run(const unsigned char *p, const unsigned char *end) {
    if (end - p < 5 || !(*p == '2' || *p == '4' || *p == '5') || p[1] != '.') return 0;
    const unsigned char *q = p + 2;
    for (int part = 0; part < 2; part++) {
        const unsigned char *digits = q;
        while (q < end && is_digit(*q)) q++;
        if (q == digits || q - digits > 3) return 0;
        if (part == 0) { if (q >= end || *q != '.') return 0; q++; }
    }
    if (end - q >= 2 && q[0] == '.' && is_digit(q[1])) return 0;
    return q - p;
}

/* smtp_reply.reply_at(text, p): the reply and code, each n < 0 when absent. */
static void exim_reply_at(const unsigned char *p, const unsigned char *end, Span *reply, Span *code) {
    reply->s = NULL; reply->n = -1;
    code->s = NULL; code->n = -1;
    if (end - p < 3 || !(*p == '2' || *p == '4' || *p == '5') || !is_digit(p[1]) || !is_digit(p[2])) return;
    const unsigned char *q = p + 3;
    if (q < end) {
        if (*q != ' ' && *q != '-') return;
        q++;
    }
    reply->s = p; reply->n = 3;
    while (q < end && *q == ' ') q++;
    if (q < end && *q == '#') q++;
    Py_ssize_t n = code_run(q, end);
    if (n > 0 && valid_code(q, n)) { code->s = q; code->n = n; }
}

/* exim._reply_or_code: the reply and code, else an enhanced code standing first (_leading_code). */
static void exim_reply_or_code(const unsigned char *p, const unsigned char *end, Span *reply, Span *code) {
    exim_reply_at(p, end, reply, code);
    if (reply->n >= 0 || p >= end || *p == '#') return;
    Py_ssize_t n = code_run(p, end);
    if (n == 0 || !valid_code(p, n)) return;
    if (p + n < end && p[n] != ' ' && p[n] != '\\') return;
    code->s = p; code->n = n;
}

/* exim._HOST_FIELD.search over [from, to): the remote (the name, else the address); n < 0 when
 * none. "(?<!\S)H=" at h, an optional "NAME " (the longest run of [!-~] but "()[]", which
 * must end at a space), an optional "(...) " (up to the first ")"), "[ADDRESS]". */
static Span exim_host(const unsigned char *from, const unsigned char *to) {
    Span none = {NULL, -1};
    const unsigned char *p = from;
    while (to - p >= 2) {
        const unsigned char *h = find(p, to, "H=", 2, 0);
        if (h == NULL) return none;
        p = h + 1;
        if (h[-1] != ' ') continue;   /* h > the line's start: the date stands before */
        const unsigned char *q = h + 2, *r = q;
        Span name = {NULL, -1};
        while (r < to && (CLASS[*r] & C_NOT_SPACE) && *r != '(' && *r != ')' && *r != '[' && *r != ']') r++;
        if (r > q && r < to && *r == ' ') { name.s = q; name.n = r - q; q = r + 1; }
        if (q < to && *q == '(') {
            const unsigned char *close = memchr(q, ')', to - q);
            if (close != NULL && close + 1 < to && close[1] == ' ') q = close + 2;
        }
        if (q >= to || *q != '[') continue;
        r = q + 1;
        while (r < to && is_hex_or_dot(*r)) r++;
        if (r == q + 1 || r >= to || *r != ']') continue;
        if (name.n > 0) return name;
        Span address = {q + 1, r - (q + 1)};
        return address;
    }
    return none;
}

/* exim._SMTP_ERROR.search from `from`: the start of the match, its end in *after and the
 * host group's remote (name, else address; n < 0 when absent) in *host; NULL when none. */
static const unsigned char *exim_smtp_error(const unsigned char *from, const unsigned char *end,
                                            const unsigned char **after, Span *host) {
    const unsigned char *p = from + 1;
    host->s = NULL; host->n = -1;
    while (p < end) {
        const unsigned char *o = find(p, end, "MTP error ", 10, 2);   /* at its "P" */
        if (o == NULL) return NULL;
        p = o + 1;
        const unsigned char *start = o - 1, *q = NULL, *t = o + 10;
        if (start < from) continue;
        if (*start == 'S' && starts(t, end, "from remote ", 12)) {
            t += 12;
            if (starts(t, end, "mail ", 5)) t += 5;   /* "(?:mail )?server": "mail " then "server", or "server" */
            if (starts(t, end, "server after ", 13)) q = t + 13;
        } else if (*start == 'L' && starts(t, end, "after ", 6)) {
            q = t + 6;
        }
        if (q == NULL) continue;
        /* "(?:pipelined )?": without it the command could only be "[^:<]*", which ends where it
         * ends with it, so taking it decides nothing differently */
        if (starts(q, end, "pipelined ", 10)) q += 10;
        const unsigned char *r = NULL;
        if (starts(q, end, "RCPT TO:<", 9)) {            /* "RCPT TO:<[^>]*>" (else "RCPT TO" then ":<": no match) */
            const unsigned char *close = memchr(q + 9, '>', end - (q + 9));
            if (close != NULL && starts(close + 1, end, ": ", 2)) r = close + 3;
        } else if (starts(q, end, "MAIL FROM:<", 11)) {  /* "MAIL FROM:<[^>]*>[^:]*" */
            const unsigned char *close = memchr(q + 11, '>', end - (q + 11));
            const unsigned char *colon = close ? memchr(close, ':', end - close) : NULL;
            if (colon != NULL && starts(colon, end, ": ", 2)) r = colon + 2;
        } else {                                          /* "[^:<]*" */
            const unsigned char *c = q;
            while (c < end && *c != ':' && *c != '<') c++;
            if (starts(c, end, ": ", 2)) r = c + 2;
        }
        if (r == NULL) continue;
        /* "(?:host ([^\s\[\]]+) \[([0-9A-Fa-f:.]+)\]: )?" */
        *after = r;
        if (starts(r, end, "host ", 5)) {
            const unsigned char *name = r + 5, *n = name;
            while (n < end && (CLASS[*n] & C_NOT_SPACE) && *n != '[' && *n != ']') n++;
            if (n > name && starts(n, end, " [", 2)) {
                const unsigned char *address = n + 2, *a = address;
                while (a < end && is_hex_or_dot(*a)) a++;
                if (a > address && starts(a, end, "]: ", 3)) {
                    host->s = name; host->n = n - name;
                    *after = a + 3;
                }
            }
        }
        return start;
    }
    return NULL;
}

/* exim._MESSAGE_START.match at p: the end of the first ": " outside "..." quotes, or NULL
 * (an unclosed quote or no ": "). Its three alternatives start with different bytes, and
 * no shorter repetition ends at a ": ", so the greedy scan is the match. */
static const unsigned char *exim_message_start(const unsigned char *p, const unsigned char *end) {
    while (p < end) {
        if (*p == '"') {
            const unsigned char *close = memchr(p + 1, '"', end - (p + 1));
            if (close == NULL) return NULL;
            p = close + 1;
        } else if (*p == ':' && p + 1 < end && p[1] == ' ') {
            return p + 2;
        } else {
            p++;
        }
    }
    return NULL;
}

/* exim._REJECTED's stages, in its order: the first that fits wins. */
static const char *const EXIM_STAGES[] = {
    "RCPT", "MAIL", "after DATA", "during MIME ACL checks", "EHLO or HELO", "EHLO", "HELO", "connection in",
    "by local_scan()", "by non-SMTP ACL", "DATA", "BDAT", "DKIM", "PRDR", "VRFY", "EXPN", "ETRN", "AUTH",
    "STARTTLS", "MAILAUTH",
};

/* exim._REJECTED.search from `from` on a printable line: the match's start (at "temporarily"
 * when it stands there), its end in *after, whether "temporarily " and which stage (index)
 * in *temporary and *stage; NULL when none. Every match holds "rejected " preceded by a
 * space, so the first "rejected " whose stage fits is where the leftmost match is. */
static const unsigned char *exim_rejected(const unsigned char *from, const unsigned char *end,
                                          const unsigned char **after, int *temporary, int *stage) {
    const unsigned char *p = from;
    while (p < end) {
        const unsigned char *r = find(p, end, "rejected ", 9, 2);   /* at its "j" */
        if (r == NULL) return NULL;
        p = r + 1;
        if (r[-1] != ' ') continue;   /* r > from: "(?<!\S)" (a plain "rejected" at `from` is preceded by a space too) */
        const unsigned char *w = r + 9;
        int found = -1;
        for (int k = 0; k < (int)(sizeof EXIM_STAGES / sizeof EXIM_STAGES[0]); k++) {
            size_t n = strlen(EXIM_STAGES[k]);
            if (starts(w, end, EXIM_STAGES[k], n) && (w + n == end || w[n] == ' ' || w[n] == ':')) { found = k; break; }
        }
        if (found < 0) continue;
        *stage = found;
        *after = w + strlen(EXIM_STAGES[found]);
        /* "(temporarily )?" at the earlier start, when it is there and preceded by a space */
        if (r - from >= 12 && memcmp(r - 12, "temporarily ", 12) == 0 && r[-13] == ' ') {
            *temporary = 1;
            return r - 12;
        }
        *temporary = 0;
        return r;
    }
    return NULL;
}

/* Whether the line holds the text anywhere (the expiry words). */
static inline int holds(const unsigned char *s, const unsigned char *end, const char *text, size_t k) {
    return find(s, end, text, strlen(text), k) != NULL;
}

/* exim._delivery: the text after the flag at p. */
static int exim_delivery(const Scanner *self, const unsigned char *s, const unsigned char *p,
                         const unsigned char *end, int flag, Fast *out) {
    Span none = {NULL, -1};
    int outcome = self->exim_flag[flag];
    out->reply = none; out->code = none; out->remote = none;
    const unsigned char *fields_end = end;
    if (flag >= 2) {   /* => -> >>: delivered; the reply inside C="..." */
        const unsigned char *confirm = find(p, end, " C=\"", 4, 1);
        if (confirm != NULL) {
            exim_reply_at(confirm + 4, end, &out->reply, &out->code);
            fields_end = confirm;
        }
    } else {
        const unsigned char *after;
        Span host;
        const unsigned char *error = exim_smtp_error(p, end, &after, &host);
        if (error != NULL) {
            exim_reply_at(after, end, &out->reply, &out->code);
            if (out->reply.n < 0) return FAST_UNPARSED;   /* the remote's answer is announced but not there */
            fields_end = error;
            if (host.n > 0) out->remote = host;
        } else {
            const unsigned char *start = exim_message_start(p, end);
            if (start != NULL) {
                if (flag == 1 && starts(start, end, "retry time not reached", 22)) return FAST_IGNORED;
                exim_reply_or_code(start, end, &out->reply, &out->code);
                fields_end = start;
            }
        }
        if (flag == 0 && (holds(s, end, "retry timeout exceeded", 8)
                          || holds(s, end, "retry time not reached for any host after a long failure", 8))) {
            outcome = self->exim_expired;
            if (out->code.n < 0) { out->code.s = (const unsigned char *)"4.4.7"; out->code.n = 5; }
        }
    }
    Span host = exim_host(p, fields_end);
    if (host.n > 0) out->remote = host;
    out->outcome = outcome;
    return FAST_EVENT;
}

/* exim._rejection, with pos at p and the _REJECTED match found there. */
static int exim_rejection(const Scanner *self, const unsigned char *p, const unsigned char *end,
                          const unsigned char *match, const unsigned char *after, int temporary, int stage,
                          Fast *out) {
    Span none = {NULL, -1};
    out->reply = none; out->code = none;
    if (stage <= 1 && starts(after, end, " <", 2)) {   /* RCPT, MAIL */
        const unsigned char *close = memchr(after, '>', end - after);
        if (close != NULL) after = close + 1;
    }
    const unsigned char *colon = find(after, end, ": ", 2, 0);
    if (colon != NULL) exim_reply_or_code(colon + 2, end, &out->reply, &out->code);
    if (out->reply.n < 0 && temporary) { out->reply.s = (const unsigned char *)"451"; out->reply.n = 3; }
    out->remote = exim_host(p, match + 1 < end ? match + 1 : end);
    if (out->remote.n < 0) out->remote = exim_host(after, colon != NULL ? colon : end);
    out->outcome = self->n_words;   /* the reject outcome */
    return FAST_EVENT;
}

/* Reads one mainlog line [s, end). */
static int read_exim(const Scanner *self, const unsigned char *s, const unsigned char *end, Fast *out) {
    out->mta = 0;
    out->forget = 0;
    /* _LINE's date: "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}" */
    static const char shape[] = "dddd-dd-dd dd:dd:dd";
    if (end - s < 20) return FAST_IGNORED;
    for (int i = 0; i < 19; i++)
        if (shape[i] == 'd' ? !is_digit(s[i]) : s[i] != (unsigned char)shape[i]) return FAST_IGNORED;
    /* the paths through "(\.[0-9]{3,6})?(?: ([+-][0-9]{4}))?(?: \[[0-9]+\])? ", in _LINE's order:
     * the text where each would put group 7 (the text after date and pid), NULL when it cannot */
    const unsigned char *p = s + 19;
    int fraction = 0;
    if (*p == '.') {   /* only with the fraction: "." is no space. Its digits must all be taken. */
        const unsigned char *d = p + 1;
        while (d < end && is_digit(*d)) d++;
        if (d - (p + 1) < 3 || d - (p + 1) > 6) return FAST_IGNORED;
        p = d;
        fraction = 1;
    }
    const unsigned char *zones[2] = {NULL, p};
    if (end - p >= 6 && p[0] == ' ' && (p[1] == '+' || p[1] == '-') && is_digit(p[2]) && is_digit(p[3])
        && is_digit(p[4]) && is_digit(p[5]))
        zones[0] = p + 6;
    const unsigned char *paths[4];
    int path_zone[4];   /* 1 when that path takes the zone */
    int n_paths = 0;
    for (int z = 0; z < 2; z++) {
        const unsigned char *q = zones[z];
        if (q == NULL) continue;
        if (end - q >= 3 && q[0] == ' ' && q[1] == '[' && is_digit(q[2])) {   /* " \[[0-9]+\]" */
            const unsigned char *d = q + 2;
            while (d < end && is_digit(*d)) d++;
            if (d < end && *d == ']' && d + 1 < end && d[1] == ' ') { path_zone[n_paths] = z == 0; paths[n_paths++] = d + 2; }
        }
        if (q < end && *q == ' ') { path_zone[n_paths] = z == 0; paths[n_paths++] = q + 1; }
    }
    if (n_paths == 0) return FAST_IGNORED;
    /* the lookahead on the first path: an id and a flag, or "rejected " standing there or after a space */
    const unsigned char *g = paths[0], *after = NULL;
    int flag = delivery_at(g, end, &after);
    const unsigned char *rejected = find(s + 20, end, "rejected ", 9, 2);
    int first_path = flag >= 0;
    if (!first_path && rejected != NULL) {
        for (const unsigned char *r = rejected; r != NULL; r = find(r + 1, end, "rejected ", 9, 2))
            if (r == g || (r > g && r[-1] == ' ')) { first_path = 1; break; }
    }
    if (!first_path) {
        /* another path may match: Python decides; else _LINE does not match at all */
        if (rejected != NULL) return NOT_FAST;
        for (int i = 1; i < n_paths; i++)
            if (delivery_at(paths[i], end, &after) >= 0) return NOT_FAST;
        return FAST_IGNORED;
    }
    /* a line _LINE matches on its first path: read here only what is plain */
    if (fraction || !printable(s, end)) return NOT_FAST;
    int minute = (s[14] - '0') * 10 + (s[15] - '0'), second = (s[17] - '0') * 10 + (s[18] - '0');
    if (minute > 59 || second > 59) return NOT_FAST;
    memcpy(out->minute_text, s, 16);
    out->minute.n = 16;
    if (path_zone[0]) {   /* the zone, " +hhmm", right after the seconds */
        memcpy(out->minute_text + 16, s + 19, 6);
        out->minute.n = 22;
    }
    out->minute.s = out->minute_text;
    out->second = second;
    /* exim.parse_body at g */
    if (flag >= 0) return exim_delivery(self, s, after, end, flag, out);
    const unsigned char *pos = g;
    Py_ssize_t id = message_id_at(g, end);
    if (id > 0 && g + id < end && g[id] == ' ') {   /* _ARRIVAL_OR_ID */
        if (starts(g + id + 1, end, "<= ", 3)) return FAST_IGNORED;
        pos = g + id + 1;
    }
    int temporary = 0, stage = 0;
    const unsigned char *stage_end = NULL;
    const unsigned char *match = exim_rejected(pos, end, &stage_end, &temporary, &stage);
    if (match == NULL) return FAST_IGNORED;
    return exim_rejection(self, pos, end, match, stage_end, temporary, stage, out);
}

/* ------------------------------------------------------------------------------------ */
/* scan()                                                                                 */

typedef struct {
    Py_ssize_t *starts;
    size_t n_starts, cap_starts;
    Py_ssize_t *forgets;   /* offsets of Exim lines read here, one before each run of lines handed back */
    size_t n_forgets, cap_forgets;
    Py_ssize_t forget_pending;   /* the last such line not yet in forgets, or -1 */
    Table keys;      /* key bytes -> a: count, b: offset of the first line */
    Table minutes;   /* minute text -> a, b: bits of the seconds 0-63, 64-99 */
    Py_ssize_t lines, matched, unparsed;
    int by_minute;   /* the keys carry the minute of the line's stamp too */
    int failed;
} ScanState;

static int push_offset(Py_ssize_t **list, size_t *n, size_t *cap, Py_ssize_t offset) {
    if (*n == *cap) {
        size_t grown = *cap ? *cap * 2 : 256;
        Py_ssize_t *more = realloc(*list, grown * sizeof(Py_ssize_t));
        if (!more) return -1;
        *list = more; *cap = grown;
    }
    (*list)[(*n)++] = offset;
    return 0;
}

/* Notes a pending Exim line in forgets (before a line handed back, and at the end of a part). */
static int flush_forget(ScanState *st) {
    if (st->forget_pending < 0) return 0;
    if (push_offset(&st->forgets, &st->n_forgets, &st->cap_forgets, st->forget_pending) < 0) return -1;
    st->forget_pending = -1;
    return 0;
}

static int push_start(ScanState *st, Py_ssize_t start) {
    if (flush_forget(st) < 0) return -1;
    if (st->n_starts == st->cap_starts) {
        size_t cap = st->cap_starts ? st->cap_starts * 2 : 256;
        Py_ssize_t *starts = realloc(st->starts, cap * sizeof(Py_ssize_t));
        if (!starts) return -1;
        st->starts = starts; st->cap_starts = cap;
    }
    st->starts[st->n_starts++] = start;
    return 0;
}

static void append_field(unsigned char *key, size_t *n, Span field) {
    if (field.n < 0) { key[(*n)++] = 1; return; }  /* None */
    key[(*n)++] = 2;
    memcpy(key + *n, field.s, field.n);
    *n += field.n;
    key[(*n)++] = 0;
}

static int count_event(ScanState *st, const Fast *fast, Py_ssize_t offset, Slot **last_slot) {
    /* key: outcome byte, then code, reply, remote (and the minute): each 1 (None) or 2 + bytes + 0 */
    size_t need = 2 + 4 * 2 + (fast->code.n > 0 ? fast->code.n : 0) + (fast->reply.n > 0 ? fast->reply.n : 0)
                  + (fast->remote.n > 0 ? fast->remote.n : 0) + (size_t)fast->minute.n;
    unsigned char small[512];
    unsigned char *key = need <= sizeof small ? small : malloc(need);
    if (!key) return -1;
    size_t n = 0;
    key[n++] = (unsigned char)fast->outcome;
    key[n++] = (unsigned char)fast->mta;
    append_field(key, &n, fast->code);
    append_field(key, &n, fast->reply);
    append_field(key, &n, fast->remote);
    if (st->by_minute) append_field(key, &n, fast->minute);
    int is_new;
    Slot *slot = table_get(&st->keys, key, n, &is_new);
    if (key != small) free(key);
    if (!slot) return -1;
    if (is_new) slot->b = (uint64_t)offset;
    slot->a++;
    /* the second, under its minute; consecutive lines mostly share the minute */
    Slot *minute;
    if (*last_slot != NULL && (*last_slot)->length == (size_t)fast->minute.n
        && memcmp(st->minutes.arena + (*last_slot)->key, fast->minute.s, fast->minute.n) == 0) {
        minute = *last_slot;
    } else {
        minute = table_get(&st->minutes, fast->minute.s, fast->minute.n, &is_new);
        if (!minute) return -1;
    }
    if (fast->second < 64) minute->a |= (uint64_t)1 << fast->second;
    else minute->b |= (uint64_t)1 << (fast->second - 64);
    *last_slot = minute;
    return 0;
}

/* Reads the lines of chunk[from, to) (from at a line start, to at a line start or the end). */
static void scan_range(const Scanner *self, const unsigned char *chunk, Py_ssize_t from, Py_ssize_t size,
                       ScanState *st) {
    Slot *last_slot = NULL;   /* the minute of the last line counted (the table's slots move when it grows) */
    size_t minutes_capacity = st->minutes.capacity;
    Py_ssize_t pos = from;
    while (pos < size) {
        const unsigned char *line = chunk + pos;
        const unsigned char *newline = memchr(line, '\n', size - pos);
        const unsigned char *end = newline ? newline : chunk + size;
        Fast fast;
        st->lines++;
        int exim = self->grammar == GRAMMAR_EXIM;
        int kind = exim ? read_exim(self, line, end, &fast) : read_fast(self, line, end, &fast);
        if (kind != NOT_FAST && fast.forget) st->forget_pending = pos;
        if (kind == FAST_EVENT) {
            if (st->minutes.capacity != minutes_capacity) {  /* slots moved when the table grew */
                last_slot = NULL;
                minutes_capacity = st->minutes.capacity;
            }
            if (count_event(st, &fast, pos, &last_slot) < 0) { st->failed = 1; return; }
            if (st->minutes.capacity != minutes_capacity) {
                last_slot = NULL;
                minutes_capacity = st->minutes.capacity;
            }
            st->matched++;
        } else if (kind == FAST_UNPARSED) {
            st->unparsed++;
        } else if (kind == FAST_IGNORED) {
            /* a Postfix line that holds no record; an Exim line that is no status line */
        } else if (exim || any_pattern(self, line, end)) {   /* read_exim leaves to Python only candidates */
            if (push_start(st, pos) < 0) { st->failed = 1; return; }
        }
        pos = (end - chunk) + 1;
    }
    if (flush_forget(st) < 0) st->failed = 1;
}

static int state_init(ScanState *st) {
    memset(st, 0, sizeof *st);
    st->forget_pending = -1;
    if (table_init(&st->keys) < 0 || table_init(&st->minutes) < 0) {
        table_free(&st->keys);
        table_free(&st->minutes);
        return -1;
    }
    return 0;
}

static void state_free(ScanState *st) {
    free(st->starts);
    st->starts = NULL;
    free(st->forgets);
    st->forgets = NULL;
    table_free(&st->keys);
    table_free(&st->minutes);
}

/* Adds a later part's state to an earlier one's: its lines come after the earlier part's. */
static int state_merge(ScanState *into, const ScanState *from) {
    for (size_t i = 0; i < from->n_starts; i++)
        if (push_offset(&into->starts, &into->n_starts, &into->cap_starts, from->starts[i]) < 0) return -1;
    for (size_t i = 0; i < from->n_forgets; i++)
        if (push_offset(&into->forgets, &into->n_forgets, &into->cap_forgets, from->forgets[i]) < 0) return -1;
    for (size_t k = 0; k < from->keys.used; k++) {
        const Slot *slot = &from->keys.slots[from->keys.order[k]];
        int is_new;
        Slot *to = table_get(&into->keys, (const unsigned char *)from->keys.arena + slot->key, slot->length, &is_new);
        if (!to) return -1;
        if (is_new) to->b = slot->b;   /* its first line is in the later part */
        to->a += slot->a;
    }
    for (size_t k = 0; k < from->minutes.used; k++) {
        const Slot *slot = &from->minutes.slots[from->minutes.order[k]];
        int is_new;
        Slot *to = table_get(&into->minutes, (const unsigned char *)from->minutes.arena + slot->key, slot->length,
                             &is_new);
        if (!to) return -1;
        to->a |= slot->a;
        to->b |= slot->b;
    }
    into->lines += from->lines;
    into->matched += from->matched;
    into->unparsed += from->unparsed;
    return 0;
}

typedef struct {
    const Scanner *self;
    const unsigned char *chunk;
    Py_ssize_t from, to;
    ScanState st;
} Part;

static void *scan_part(void *arg) {
    Part *part = arg;
    scan_range(part->self, part->chunk, part->from, part->to, &part->st);
    return NULL;
}

/* Reads a whole chunk into st: in parts, one thread each, when it is large enough. */
static void scan_chunk(const Scanner *self, const unsigned char *chunk, Py_ssize_t size, ScanState *st) {
    int n = self->threads;
    if (size / PART_BYTES < n) n = (int)(size / PART_BYTES);
    if (n <= 1) {
        scan_range(self, chunk, 0, size, st);
        return;
    }
    Part parts[MAX_THREADS];
    pthread_t ids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    Py_ssize_t from = 0;
    int count = 0;
    for (int i = 0; i < n && from < size; i++) {
        Py_ssize_t to = size;
        if (i < n - 1) {   /* the line end after this part's share */
            const unsigned char *newline = memchr(chunk + size / n * (i + 1), '\n', size - size / n * (i + 1));
            to = newline ? (newline - chunk) + 1 : size;
            if (to < from) to = from;
        }
        parts[count].self = self;
        parts[count].chunk = chunk;
        parts[count].from = from;
        parts[count].to = to;
        if (count > 0) {
            if (state_init(&parts[count].st) < 0) { st->failed = 1; break; }
            parts[count].st.by_minute = st->by_minute;
        }
        count++;
        from = to;
    }
    parts[0].st = *st;
    for (int i = 1; i < count; i++)
        started[i] = pthread_create(&ids[i], NULL, scan_part, &parts[i]) == 0;
    scan_part(&parts[0]);
    for (int i = 1; i < count; i++) {
        if (started[i]) pthread_join(ids[i], NULL);
        else scan_part(&parts[i]);   /* no thread to be had: read it here */
    }
    *st = parts[0].st;
    for (int i = 1; i < count; i++) {
        if (parts[i].st.failed || (!st->failed && state_merge(st, &parts[i].st) < 0)) st->failed = 1;
        state_free(&parts[i].st);
    }
}

static PyObject *field_object(const unsigned char *key, size_t *i) {
    if (key[*i] == 1) { (*i)++; Py_RETURN_NONE; }
    (*i)++;
    const unsigned char *start = key + *i;
    while (key[*i] != 0) (*i)++;
    PyObject *text = PyUnicode_DecodeLatin1((const char *)start, key + *i - start, NULL);
    (*i)++;
    return text;
}

static PyObject *Scanner_scan(Scanner *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"chunk", "by_minute", "forgets", NULL};
    Py_buffer view;
    int by_minute = 0, with_forgets = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|pp", names, &view, &by_minute, &with_forgets)) return NULL;
    ScanState st;
    if (state_init(&st) < 0) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    st.by_minute = by_minute;
    /* with the GIL held, and only while no other thread's scan reads the tables */
    if (!self->tuned && self->busy == 0 && view.len >= TUNE_BYTES
        && tune_anchors(self, (const unsigned char *)view.buf, view.len) < 0)
        st.failed = 1;
    if (!st.failed) {
        self->busy++;
        Py_BEGIN_ALLOW_THREADS
        scan_chunk(self, (const unsigned char *)view.buf, view.len, &st);
        Py_END_ALLOW_THREADS
        self->busy--;
    }
    PyBuffer_Release(&view);

    PyObject *result = NULL, *starts = NULL, *keys = NULL, *minutes = NULL, *forgets = NULL;
    if (st.failed) { PyErr_NoMemory(); goto done; }
    starts = PyList_New((Py_ssize_t)st.n_starts);
    if (!starts) goto done;
    for (size_t i = 0; i < st.n_starts; i++) {
        PyObject *n = PyLong_FromSsize_t(st.starts[i]);
        if (!n) goto done;
        PyList_SET_ITEM(starts, i, n);
    }
    keys = PyList_New((Py_ssize_t)st.keys.used);
    if (!keys) goto done;
    for (size_t k = 0; k < st.keys.used; k++) {
        Slot *slot = &st.keys.slots[st.keys.order[k]];
        const unsigned char *key = (const unsigned char *)st.keys.arena + slot->key;
        size_t i = 2;
        PyObject *outcome = PyTuple_GET_ITEM(self->outcomes, key[0]);
        PyObject *mta = PyTuple_GET_ITEM(self->mtas, key[1]);
        PyObject *code = field_object(key, &i);
        PyObject *reply = code ? field_object(key, &i) : NULL;
        PyObject *remote = reply ? field_object(key, &i) : NULL;
        if (!remote) { Py_XDECREF(code); Py_XDECREF(reply); goto done; }
        PyObject *entry;
        if (st.by_minute) {
            PyObject *minute = field_object(key, &i);
            if (!minute) { Py_DECREF(code); Py_DECREF(reply); Py_DECREF(remote); goto done; }
            entry = Py_BuildValue("(n(OONNN)nN)", (Py_ssize_t)slot->b, mta, outcome,
                                  code, reply, remote, (Py_ssize_t)slot->a, minute);
        } else {
            entry = Py_BuildValue("(n(OONNN)n)", (Py_ssize_t)slot->b, mta, outcome,
                                  code, reply, remote, (Py_ssize_t)slot->a);
        }
        if (!entry) goto done;
        PyList_SET_ITEM(keys, k, entry);
    }
    minutes = PyDict_New();
    if (!minutes) goto done;
    for (size_t k = 0; k < st.minutes.used; k++) {
        Slot *slot = &st.minutes.slots[st.minutes.order[k]];
        PyObject *text = PyUnicode_DecodeLatin1(st.minutes.arena + slot->key, slot->length, NULL);
        PyObject *low = PyLong_FromUnsignedLongLong(slot->a);
        PyObject *high = PyLong_FromUnsignedLongLong(slot->b);
        PyObject *shift = PyLong_FromLong(64);
        PyObject *shifted = (high && shift) ? PyNumber_Lshift(high, shift) : NULL;
        PyObject *bits = (shifted && low) ? PyNumber_Or(shifted, low) : NULL;
        int failed = !text || !bits || PyDict_SetItem(minutes, text, bits) < 0;
        Py_XDECREF(text); Py_XDECREF(low); Py_XDECREF(high); Py_XDECREF(shift);
        Py_XDECREF(shifted); Py_XDECREF(bits);
        if (failed) goto done;
    }
    if (with_forgets) {
        forgets = PyList_New((Py_ssize_t)st.n_forgets);
        if (!forgets) goto done;
        for (size_t i = 0; i < st.n_forgets; i++) {
            PyObject *n = PyLong_FromSsize_t(st.forgets[i]);
            if (!n) goto done;
            PyList_SET_ITEM(forgets, i, n);
        }
        result = Py_BuildValue("(OOOnnnO)", starts, keys, minutes, st.lines, st.matched, st.unparsed, forgets);
    } else {
        result = Py_BuildValue("(OOOnnn)", starts, keys, minutes, st.lines, st.matched, st.unparsed);
    }
done:
    Py_XDECREF(starts); Py_XDECREF(keys); Py_XDECREF(minutes); Py_XDECREF(forgets);
    state_free(&st);
    return result;
}

static PyMethodDef Scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))Scanner_scan, METH_VARARGS | METH_KEYWORDS,
     "scan(chunk, by_minute=False, forgets=False) -> (starts, keys, minutes, lines, matched, unparsed[, forgets])\n\n"
     "starts: offsets of the lines left to the Python parser (they hold a prefilter pattern);\n"
     "keys: [(offset of the first line, (mta, outcome, code, reply, remote), count)] of the\n"
     "lines read here, in the order they first appear (by_minute: the keys are per minute of\n"
     "the lines' stamps too, and each entry ends with that minute's text); minutes: stamp text without its\n"
     "seconds -> bits of the seconds seen; lines: in the chunk; matched, unparsed: lines read here;\n"
     "forgets (when asked): offsets of Exim lines read here through syslog, one before each run of\n"
     "starts after such lines and one after the last: where exim.py's memory must be dropped."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "exporter._fastscan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Scanner(patterns, programs, status_outcomes, reject_outcome, mta, threads=0, grammar='syslog'):\n"
              "reads chunks of syslog lines, or with grammar='exim' of Exim mainlog lines (patterns and programs\n"
              "unused; status_outcomes maps each delivery flag and 'expired' to its outcome); threads=0: one per\n"
              "usable CPU, at most 4.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef fastscan_module = {
    PyModuleDef_HEAD_INIT, "exporter._fastscan",
    "The compiled scanner of the syslog and exim parsers (see exporter/_fastscan.c).", -1, NULL,
};

PyMODINIT_FUNC PyInit__fastscan(void) {
    init_classes();
    if (PyType_Ready(&ScannerType) < 0) return NULL;
    PyObject *module = PyModule_Create(&fastscan_module);
    if (!module) return NULL;
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(module, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(&ScannerType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}

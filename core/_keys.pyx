# cython: language_level=3, boundscheck=False, wraparound=False
"""KeyIndex: string ids -> dense numbers, without a Python object per id.

The engine resolves every transaction_id, openid and unionid to a dense number.
A `dict[str, int]` costs a str object (~80 bytes for a 32-character id) plus a
dict entry per id, and every lookup chases three pointers. A KeyIndex keeps the
ids' UTF-8 bytes back to back in one arena, optional values in one array, and an
open-addressing table of slots holding a key's number plus one and a tag of its hash
(core/_keytable.pxd): a miss usually costs one cache line, a hit two or three.

Compact by default, for 10M-member engines (docs/memory.md). The platform's ids
of one kind share one length, so while every key has the same byte length the
index keeps no offsets (key i is at i * width); while they also use only the ids'
64 characters, they are packed 6 bits a character (core/_keypack.pxd). The first
key of another length builds the offsets, the first that cannot be packed unpacks
them all, each for good. Values are int32 while every value fits, then int64
(widened once). The table stays at most 80% full and grows by half (homes are the
hash's top 32 bits scaled to the table's size, so any size works). Its slots are 8
bytes by default: growing re-hashes no key. The member maps take 4-byte slots
(`slot_bytes=4`): half the table, but growing re-hashes every key from the arena
(about twice per key over its life). The arena and the values grow by an eighth
(large blocks are remapped, not copied). A 28-character openid costs about
21 + 4 + 5..7.5 bytes with 4-byte slots (10..15 with 8-byte ones).

Numbers are insertion order (0, 1, 2, ...), and iteration follows that order,
as a dict's does. Without values, an id's value is its number. Keys compare by
their bytes, so lookups are exact (no fingerprints). Nothing is ever removed:
the engine's maps only grow.
"""

from pickle import PickleBuffer

from cpython.bytes cimport PyBytes_AS_STRING
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport INT32_MAX, INT32_MIN, int32_t, int64_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy

from core._keyhash cimport PM_NUMBER_MAX, pm_hash, pm_prefetch
from core._keypack cimport pack6, packed_size, pad_clear, pm_unpack6_by, unpack6
from core._keyprobe cimport (_length, _peek, _place_in, _probe, _probe_stats, _raw,
                              _rehash_into, _stored)
from core._keytable cimport grow_wide, grown, home_byte, number_mask, sound

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)
    void* PyUnicode_DATA(object o)
    Py_ssize_t PyUnicode_GET_LENGTH(object o)

DEF MIN_SLOTS = 16
DEF MIN_NUMBERS = 16
DEF SLOTS_MAX = 1 << 32  # homes scale the hash's top 32 bits (core/_keytable.pxd)
DEF ARENA_MIN = 64
DEF PACKED_MAX = 48  # bytes of a packed key at most (64 characters; core._keypack)


cdef inline size_t _slots_for(Py_ssize_t keys) noexcept:
    # The smallest table at most 80% full with `keys` keys.
    return max(<size_t>MIN_SLOTS, (<size_t>keys * 5 + 3) // 4)


# The probe loops of each width, out of line: a KeyIndex calls the pair of its width
# through `find_fn` and `peek_fn` (set with the width), so no call tests the width and
# neither loop shares a function (and its registers) with the other.
cdef Py_ssize_t _find8(KeyIndex k, const unsigned char* p, Py_ssize_t n, uint64_t h) noexcept:
    return _probe(k, <uint64_t*>k.slots, p, n, h)


cdef Py_ssize_t _find4(KeyIndex k, const unsigned char* p, Py_ssize_t n, uint64_t h) noexcept:
    return _probe(k, <uint32_t*>k.slots, p, n, h)


cdef Py_ssize_t _peek8(KeyIndex k, uint64_t h) noexcept:
    return _peek(k, <uint64_t*>k.slots, h)


cdef Py_ssize_t _peek4(KeyIndex k, uint64_t h) noexcept:
    return _peek(k, <uint32_t*>k.slots, h)


cdef class KeyIndex:
    """A map from str ids to int64 values (or to their insertion numbers), insertion-ordered;
    `slot_bytes` 8 (growing re-hashes no key) or 4 (half the table; growing re-hashes)."""

    def __cinit__(self, bint values=True, Py_ssize_t capacity=0, int slot_bytes=8):
        cdef size_t cap = _slots_for(capacity)
        if slot_bytes != 4 and slot_bytes != 8:
            raise ValueError(f"slot_bytes is 4 or 8, not {slot_bytes}")
        self.slots = calloc(cap, 4 if slot_bytes == 4 else 8)
        self.cap = cap
        self._set_width(slot_bytes)
        self.nmask = number_mask(cap)
        self.tbytes = cap * <size_t>slot_bytes
        self.n = 0
        self.width = -1
        self.rec = 0
        self.packed = False
        self.offs = NULL
        self.ocap = max(capacity, MIN_NUMBERS)
        self.has_values = values
        self.wide = False
        self.vals = malloc(self.ocap * sizeof(int32_t)) if values else NULL
        self.acap = ARENA_MIN
        self.arena = <unsigned char*>malloc(self.acap)
        self.used = 0
        if self.slots == NULL or self.arena == NULL or (values and self.vals == NULL):
            raise MemoryError()

    def __dealloc__(self):
        free(self.slots)
        free(self.offs)
        free(self.vals)
        free(self.arena)

    # ------------------------------------------------------------------ C level
    cdef Py_ssize_t _insert(self, const unsigned char* p, Py_ssize_t n, uint64_t h,
                            int64_t value) except -1:
        """Append a key known to be absent; returns its number."""
        cdef Py_ssize_t i = self.n
        if i >= PM_NUMBER_MAX:
            raise OverflowError("KeyIndex holds at most 4,294,967,294 keys")
        if <size_t>(i + 1) * 5 > self.cap * 4:
            self._grow_slots()
        if i >= self.ocap:
            self._grow_numbers(i + 1)
        cdef unsigned char q[PACKED_MAX]
        cdef Py_ssize_t packed = -1
        cdef bint placed = False  # the key's bytes are in the arena already
        if self.offs == NULL:
            if self.width == -1:  # the first key sets the width, and whether keys are packed
                packed = pack6(p, n, q) if n > 0 else -1
                self.width = n
                self.packed = packed >= 0
                self.rec = packed if packed >= 0 else n
            elif n != self.width:
                if self.packed:
                    self._unpack_all()
                self._vary()
            elif self.packed:  # packed straight into the arena, past `used` until kept
                if self.used + <size_t>self.rec > self.acap:
                    self._grow_arena(self.rec)
                packed = pack6(p, n, self.arena + self.used)
                if packed < 0:
                    self._unpack_all()
                else:
                    placed = True
        if placed:
            n = packed
        else:
            if self.packed:
                p, n = q, packed
            if self.used + <size_t>n > self.acap:
                self._grow_arena(n)
            memcpy(self.arena + self.used, p, <size_t>n)
        if self.has_values:
            if not self.wide and INT32_MIN <= value <= INT32_MAX:
                (<int32_t*>self.vals)[i] = <int32_t>value
            else:
                self._set_value(i, value)
        self.used += <size_t>n
        if self.offs != NULL:
            self.offs[i + 1] = <int64_t>self.used
        self._place(h, i)
        self.n = i + 1
        return i

    cdef void _set_width(self, int slot_bytes) noexcept:
        self.slot_bytes = slot_bytes
        self.find_fn, self.peek_fn = (_find4, _peek4) if slot_bytes == 4 else (_find8, _peek8)

    cdef inline void _place(self, uint64_t h, Py_ssize_t i) noexcept:
        if self.slot_bytes == 4:
            _place_in(self, <uint32_t*>self.slots, h, i)
        else:
            _place_in(self, <uint64_t*>self.slots, h, i)

    cdef int _grow_slots(self) except -1:
        cdef size_t cap = grown(self.cap)
        if self.slot_bytes == 4:
            return self._rebuild(cap)
        self.slots = grow_wide(<uint64_t*>self.slots, self.cap, cap)
        self.cap, self.tbytes = cap, cap * 8
        return 0

    cdef int _rebuild(self, size_t cap) except -1:
        """A fresh table of `cap` slots holding keys 0 .. n - 1, each re-hashed from the
        arena (4-byte slots keep too few bits of the hash to find their home in another
        size), in number order: the arena is read in sequence."""
        cdef void* fresh = calloc(cap, self.slot_bytes)
        if fresh == NULL:
            raise MemoryError()
        if self.slot_bytes == 4:
            _rehash_into(self, <uint32_t*>fresh, cap, number_mask(cap))
        else:
            _rehash_into(self, <uint64_t*>fresh, cap, 0)
        free(self.slots)
        self.slots, self.cap, self.nmask = fresh, cap, number_mask(cap)
        self.tbytes = cap * <size_t>self.slot_bytes
        self.miss_cap = 0  # no search stopped in this table yet
        return 0

    cdef int _grow_numbers(self, Py_ssize_t need) except -1:
        # By an eighth: little capacity ahead, and a large block is remapped, not copied.
        cdef Py_ssize_t cap = max(need, self.ocap + max(self.ocap // 8, MIN_NUMBERS))
        if self.offs != NULL:
            self.offs = <int64_t*>_realloc(self.offs, (cap + 1) * sizeof(int64_t))
        if self.has_values:
            self.vals = _realloc(self.vals, cap * (sizeof(int64_t) if self.wide else sizeof(int32_t)))
        self.ocap = cap
        return 0

    cdef int _grow_arena(self, Py_ssize_t need) except -1:
        cdef size_t cap = max(self.used + <size_t>need, self.acap + self.acap // 8 + ARENA_MIN)
        self.arena = <unsigned char*>_realloc(self.arena, cap)
        self.acap = cap
        return 0

    cdef int _vary(self) except -1:
        """Keys of different lengths from now on: build their offsets (keys unpacked)."""
        cdef int64_t* offs = <int64_t*>malloc((self.ocap + 1) * sizeof(int64_t))
        cdef Py_ssize_t i
        if offs == NULL:
            raise MemoryError()
        for i in range(self.n + 1):
            offs[i] = i * self.width
        self.offs = offs
        self.width = -2
        return 0

    cdef int _unpack_all(self) except -1:
        """A key that cannot be packed: keep every key as given from now on."""
        cdef size_t size = <size_t>(self.n * self.width)
        cdef size_t cap = size + size // 8 + ARENA_MIN
        cdef unsigned char* raw = <unsigned char*>malloc(cap)
        cdef Py_ssize_t i
        if raw == NULL:
            raise MemoryError()
        for i in range(self.n):
            unpack6(self.arena + i * self.rec, self.width, raw + i * self.width)
        free(self.arena)
        self.arena, self.acap, self.used = raw, cap, size
        self.packed = False
        self.rec = self.width
        return 0

    cdef int _widen(self) except -1:
        """A value past int32: hold every value as int64 from now on."""
        cdef int64_t* wide = <int64_t*>malloc(self.ocap * sizeof(int64_t))
        cdef int32_t* narrow = <int32_t*>self.vals
        cdef Py_ssize_t i
        if wide == NULL:
            raise MemoryError()
        for i in range(self.n):
            wide[i] = narrow[i]
        free(self.vals)
        self.vals = wide
        self.wide = True
        return 0

    cdef int _set_value(self, Py_ssize_t i, int64_t value) except -1:
        if self.wide:
            (<int64_t*>self.vals)[i] = value
            return 0
        if value < INT32_MIN or value > INT32_MAX:
            self._widen()
            (<int64_t*>self.vals)[i] = value
            return 0
        (<int32_t*>self.vals)[i] = <int32_t>value
        return 0

    cdef Py_ssize_t find(self, str key, uint64_t h=0) except -2:
        """The number of `key`, or -1; `h`, when not 0, is its `hash_ascii`."""
        return self._lookup(key, False, 0, h)

    cdef Py_ssize_t add(self, str key, int64_t value, uint64_t h=0) except -1:
        """Append `key` (the caller knows it is absent) with `value`; returns its number."""
        return self._lookup(key, True, value, h)

    cdef Py_ssize_t _lookup(self, str key, bint insert, int64_t value, uint64_t h) except -2:
        # ASCII ids (all of the platform's) are hashed in place; others as UTF-8.
        cdef Py_ssize_t n, i
        cdef const unsigned char* p
        cdef bytes b = None
        if PyUnicode_IS_ASCII(key):
            n = PyUnicode_GET_LENGTH(key)
            p = <const unsigned char*>PyUnicode_DATA(key)
        else:
            b = _utf8(key)
            n = len(b)
            p = <const unsigned char*>PyBytes_AS_STRING(b)
        if h == 0:
            h = pm_hash(p, n)
        if not insert:
            return self._find(p, n, h)
        return self._insert(p, n, h, value)

    # Prefetching, for batches: the caller hashes a row's keys some rows ahead, touches
    # their slots, then their numbers' entries, so that the lookup finds them cached.
    cdef uint64_t hash_ascii(self, str key) noexcept:
        """The hash of an ASCII `key`, or 0 for others (not prefetched)."""
        if not PyUnicode_IS_ASCII(key):
            return 0
        return pm_hash(<const unsigned char*>PyUnicode_DATA(key), PyUnicode_GET_LENGTH(key))

    cdef uint64_t hash_bytes(self, const unsigned char* p, Py_ssize_t n) noexcept:
        """The hash of the UTF-8 key `p[:n]` (what `_find` and `_insert` take)."""
        return pm_hash(p, n)

    cdef void prefetch_slot(self, uint64_t h) noexcept:
        pm_prefetch(<char*>self.slots + home_byte(h, self.tbytes))

    cdef void prefetch_entry(self, Py_ssize_t i) noexcept:
        if self.offs != NULL:
            pm_prefetch(self.offs + i)
        if self.has_values:
            pm_prefetch(<char*>self.vals + i * (8 if self.wide else 4))

    cdef void prefetch_key(self, Py_ssize_t i) noexcept:
        pm_prefetch(_stored(self, i))

    # ------------------------------------------------------------------ Python level
    def get(self, key, default=None):
        """The value of `key`, or `default`."""
        if type(key) is not str:
            return default
        cdef Py_ssize_t i = self.find(key)
        return default if i < 0 else self.value_at(i)

    def number(self, str key) -> int:
        """The insertion number of `key`, or -1."""
        return self.find(key)

    def __getitem__(self, key):
        if type(key) is not str:
            raise KeyError(key)
        cdef Py_ssize_t i = self.find(key)
        if i < 0:
            raise KeyError(key)
        return self.value_at(i)

    def __setitem__(self, str key, int64_t value):
        cdef Py_ssize_t i = self.find(key)
        if i < 0:
            if not self.has_values and value != self.n:
                raise ValueError("a KeyIndex without values maps each key to its number")
            self.add(key, value)
        elif self.has_values:
            self._set_value(i, value)
        elif value != i:
            raise ValueError("a KeyIndex without values maps each key to its number")

    def __contains__(self, key) -> bool:
        return type(key) is str and self.find(key) >= 0

    def __len__(self) -> int:
        return self.n

    def key(self, Py_ssize_t i) -> str:
        """The key numbered `i`."""
        cdef unsigned char buf[64]
        if not 0 <= i < self.n:
            raise IndexError(i)
        return PyUnicode_DecodeUTF8(<char*>_raw(self, i, buf), _length(self, i), "surrogatepass")

    def __iter__(self):
        cdef Py_ssize_t i
        for i in range(self.n):
            yield self.key(i)

    def keys(self) -> list:
        """Every key, in insertion order."""
        return [self.key(i) for i in range(self.n)]

    def values(self) -> list:
        """Every value, in insertion order."""
        cdef Py_ssize_t i
        return [self.value_at(i) for i in range(self.n)]

    def items(self) -> list:
        """(key, value) pairs, in insertion order."""
        cdef Py_ssize_t i
        return [(self.key(i), self.value_at(i)) for i in range(self.n)]

    def nbytes(self) -> int:
        """Bytes allocated: table, offsets (keys of varying length only), values and arena."""
        return (self.cap * self.slot_bytes + ((self.ocap + 1) * 8 if self.offs != NULL else 0)
                + (self.ocap * (8 if self.wide else 4) if self.has_values else 0) + self.acap)

    def layout(self) -> dict:
        """Bytes allocated by part, and the key width (None once keys vary), for reports."""
        return {"keys": self.n, "width": self.width if self.width >= 0 else None,
                "packed": bool(self.packed),
                "slots": self.cap * self.slot_bytes, "slot_bytes": self.slot_bytes,
                "tag_bits": 32 - int(self.nmask).bit_count() if self.slot_bytes == 4 else 32,
                "offsets": (self.ocap + 1) * 8 if self.offs != NULL else 0,
                "values": self.ocap * (8 if self.wide else 4) if self.has_values else 0,
                "arena": self.acap, "arena_used": self.used}

    def probe_stats(self) -> dict:
        """How long lookups are, for reports: the average slots read and keys compared
        (tags that match) by a hit, over every key, and by a miss, over every home (its
        compares expected from the tag's width: a miss's tag is as good as random)."""
        if self.slot_bytes == 4:
            return _probe_stats(self, <uint32_t*>self.slots)
        return _probe_stats(self, <uint64_t*>self.slots)

    def reslot(self, int slot_bytes) -> None:
        """Re-hash every key into a table of `slot_bytes` (4 or 8) slots of the same size."""
        if slot_bytes != 4 and slot_bytes != 8:
            raise ValueError(f"slot_bytes is 4 or 8, not {slot_bytes}")
        cdef int old = self.slot_bytes
        if slot_bytes != old:
            self._set_width(slot_bytes)
            try:
                self._rebuild(self.cap)
            except BaseException:  # MemoryError: the old table stays, and its width
                self._set_width(old)
                raise

    def __sizeof__(self) -> int:
        return 64 + self.nbytes()  # the object itself, plus its buffers (sys.getsizeof)

    def __reduce__(self):
        return self.__reduce_ex__(4)

    def __reduce_ex__(self, protocol):
        # The slot table goes along (its slot width last), so that loading is copying,
        # not re-hashing. From
        # protocol 5 the buffers are views of this index's memory (out of band when the
        # pickler takes buffers; core.state_codec does), else bytes copies.
        parts = [_export(self.arena, self.used),
                 _export(self.offs, (self.n + 1) * 8) if self.offs != NULL else None,
                 _export(self.vals, self.n * (8 if self.wide else 4)) if self.has_values else None,
                 _export(self.slots, self.cap * self.slot_bytes)]
        if protocol >= 5:
            parts = [None if p is None else PickleBuffer(p) for p in parts]
        else:
            parts = [None if p is None else bytes(p) for p in parts]
        return (_restore, (self.has_values, self.n, self.width, self.packed, self.wide, *parts,
                           self.slot_bytes))

    def __repr__(self) -> str:
        return f"KeyIndex({self.n} keys, {'values' if self.has_values else 'numbered'})"


cdef void* _realloc(void* p, size_t size) except NULL:
    # realloc, or MemoryError (the old block stays valid and owned by the caller).
    cdef void* q = realloc(p, size)
    if q == NULL:
        raise MemoryError()
    return q


cdef bytes _utf8(str key):
    return key.encode("utf-8", "surrogatepass")


cdef object _export(void* p, size_t n):
    # A buffer over n bytes at p, not owning them (alive as long as the index is).
    if n == 0:
        return b""
    return <unsigned char[:n]><unsigned char*>p


cdef const unsigned char* _at(const unsigned char[::1] b) noexcept:
    return &b[0] if b.shape[0] else NULL


def _restore(bint values, Py_ssize_t n, Py_ssize_t width, bint packed, bint wide, arena,
             offs, vals, slots=None, int slot_bytes=8) -> KeyIndex:
    """Rebuild a pickled KeyIndex (bytes or buffers) at its exact size: copied; the table
    too when given and sound, else re-hashed from the arena. Pickles before snapshot
    version 7 hold no `slot_bytes`: their tables are of 8-byte slots. Raises ValueError
    for a state no KeyIndex could have written."""
    cdef const unsigned char[::1] a = arena
    cdef const unsigned char[::1] o = offs if offs is not None else b""
    cdef const unsigned char[::1] v = vals if vals is not None else b""
    cdef const unsigned char[::1] t = slots if slots is not None else b""
    cdef Py_ssize_t i, size = 8 if wide else 4
    cdef bint fixed = width >= 0 or (width == -1 and n == 0)
    cdef Py_ssize_t rec = packed_size(width) if packed else max(width, 0)
    if (n < 0 or n >= PM_NUMBER_MAX or width < -2 or (wide and not values)
            or (packed and not 0 < width <= 64)
            or (fixed and (offs is not None or a.shape[0] != n * rec))
            or (not fixed and (width != -2 or offs is None or o.shape[0] != (n + 1) * 8))
            or (values and (vals is None or v.shape[0] != n * size))
            or (not values and vals is not None) or slot_bytes not in (4, 8)):
        raise ValueError("corrupt KeyIndex state")
    cdef KeyIndex k = KeyIndex(values, n, slot_bytes)
    k.arena = <unsigned char*>_realloc(k.arena, max(<size_t>a.shape[0], <size_t>ARENA_MIN))
    k.acap = max(<size_t>a.shape[0], <size_t>ARENA_MIN)
    memcpy(k.arena, _at(a), a.shape[0])
    k.used = a.shape[0]
    k.width, k.rec, k.packed = width, rec, packed
    if packed:
        for i in range(n):
            if not pad_clear(k.arena + i * rec, width):
                raise ValueError("corrupt KeyIndex state")
    if values:
        if wide:
            k.vals = _realloc(k.vals, k.ocap * sizeof(int64_t))
            k.wide = True
        memcpy(k.vals, _at(v), v.shape[0])
    if not fixed:
        k.offs = <int64_t*>malloc((k.ocap + 1) * sizeof(int64_t))
        if k.offs == NULL:
            raise MemoryError()
        memcpy(k.offs, _at(o), o.shape[0])
        if k.offs[0] != 0 or k.offs[n] != <int64_t>k.used:
            raise ValueError("corrupt KeyIndex state")
        for i in range(n):
            if k.offs[i] > k.offs[i + 1]:
                raise ValueError("corrupt KeyIndex state")
    cdef size_t cap = t.shape[0] // slot_bytes
    k.n = n
    if (t.shape[0] % slot_bytes == 0 and MIN_SLOTS <= cap <= SLOTS_MAX
            and <size_t>n * 5 <= cap * 4
            and (sound(<uint32_t*>_at(t), cap, n) if slot_bytes == 4
                 else sound(<uint64_t*>_at(t), cap, n))):
        free(k.slots)
        k.slots = malloc(cap * slot_bytes)
        if k.slots == NULL:
            raise MemoryError()
        memcpy(k.slots, _at(t), cap * slot_bytes)
        k.cap, k.nmask, k.tbytes = cap, number_mask(cap), cap * <size_t>slot_bytes
    else:
        k._rebuild(k.cap)
    return k


def key_hash(str key) -> int:
    """The 64-bit hash a KeyIndex gives `key` (of its UTF-8 bytes): its home is the top 32
    bits scaled to the table's size; the tag of an 8-byte slot is the same bits, of a
    4-byte slot the low bits (for tests and reports)."""
    cdef bytes b = _utf8(key)
    return pm_hash(<const unsigned char*>PyBytes_AS_STRING(b), len(b))


def unpack_by(bytes packed, Py_ssize_t n, int path):
    """The `n` characters packed in `packed` (its first packed size bytes), unpacked by one
    path: 0 scalar, 1 SSSE3, 2 AVX2; None when this CPU lacks that path or it does not
    take `n` characters (for tests: every path gives the same bytes)."""
    cdef unsigned char out[64]
    if not 0 < n <= 64 or len(packed) < packed_size(n):
        raise ValueError(f"{len(packed)} bytes do not hold {n} packed characters")
    if not pm_unpack6_by(<const unsigned char*>PyBytes_AS_STRING(packed), n, out, path):
        return None
    return (<char*>out)[:n]

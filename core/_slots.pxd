# Reading an exact instance's __slots__ field by its offset (taken once at import): a
# load instead of an attribute lookup through the type. Shared by the compiled modules
# that read Payment, Refund, Accounts and Lots instances on their hot paths.
from cpython.ref cimport PyObject

cdef extern from "Python.h":
    ctypedef struct PyMemberDef:
        Py_ssize_t offset
    ctypedef struct PyMemberDescrObject:
        PyMemberDef* d_member


cdef inline Py_ssize_t slot_offset(type cls, str name) except -1:
    """The offset of slot `name` in instances of `cls`; TypeError if it is not a slot."""
    d = cls.__dict__.get(name)
    if d is None or type(d).__name__ != "member_descriptor":
        raise TypeError(f"{cls.__name__}.{name} is not a slot")
    return (<PyMemberDescrObject*>d).d_member.offset


cdef inline PyObject** slot_at(object o, Py_ssize_t off) noexcept:
    """Where instance `o` keeps the slot at offset `off` (NULL inside while unset)."""
    return <PyObject**>(<char*><PyObject*>o + off)

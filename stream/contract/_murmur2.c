/* Kafka's murmur2 partitioner in C: the fast path of stream/contract/partitioner.py.
 *
 * Built by `make install` (setup.py: an optional extension, so a machine without a C
 * compiler installs the package and keeps the pure-Python partitioner). Exactly
 * Java's org.apache.kafka.common.utils.Utils.murmur2 and toPositive: the unit tests
 * hold it to Kafka's published vectors and to the Python version on every length.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SEED 0x9747b28cU
#define M 0x5bd1e995U

/* murmur2 of n bytes as an unsigned 32-bit value (all arithmetic mod 2**32). */
static uint32_t murmur2(const unsigned char *data, Py_ssize_t n)
{
    uint32_t h = SEED ^ (uint32_t)n;
    Py_ssize_t n4 = n & ~(Py_ssize_t)3;
    for (Py_ssize_t i = 0; i < n4; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8
                   | (uint32_t)data[i + 2] << 16 | (uint32_t)data[i + 3] << 24;
        k *= M;
        k ^= k >> 24;
        k *= M;
        h *= M;
        h ^= k;
    }
    switch (n & 3) {  /* the tail, as Java's switch falls through */
    case 3: h ^= (uint32_t)data[n4 + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[n4 + 1] << 8;  /* fall through */
    case 1: h ^= (uint32_t)data[n4];
            h *= M;
    }
    h ^= h >> 13;
    h *= M;
    h ^= h >> 15;
    return h;
}

/* murmur2 of a bytes-like object; -1 (an exception set) when it is not one. */
static int64_t murmur2_of(PyObject *key)
{
    if (PyBytes_Check(key))
        return murmur2((const unsigned char *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
    Py_buffer view;
    if (PyObject_GetBuffer(key, &view, PyBUF_SIMPLE) < 0)
        return -1;
    uint32_t h = murmur2((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return h;
}

static PyObject *py_murmur2(PyObject *self, PyObject *key)
{
    int64_t h = murmur2_of(key);
    return h < 0 ? NULL : PyLong_FromUnsignedLong((unsigned long)h);
}

/* partitions_of(keys, partitions): toPositive(murmur2(key)) % partitions for each
 * key, None for None; one call for a whole batch. */
static PyObject *py_partitions_of(PyObject *self, PyObject *args)
{
    PyObject *keys;
    long partitions;
    if (!PyArg_ParseTuple(args, "Ol:partitions_of", &keys, &partitions))
        return NULL;
    if (partitions <= 0) {
        PyErr_SetString(PyExc_ValueError, "partitions must be positive");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(keys, "keys must be a sequence");
    if (seq == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *p;
        if (items[i] == Py_None) {
            p = Py_NewRef(Py_None);
        } else {
            int64_t h = murmur2_of(items[i]);
            if (h < 0)
                goto fail;
            p = PyLong_FromLong((long)((h & 0x7fffffff) % partitions));
            if (p == NULL)
                goto fail;
        }
        PyList_SET_ITEM(out, i, p);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

static PyMethodDef methods[] = {
    {"murmur2", py_murmur2, METH_O,
     "Kafka's murmur2 of a bytes-like key as an unsigned 32-bit int."},
    {"partitions_of", py_partitions_of, METH_VARARGS,
     "The contract partition of every key (None for None), one call per batch."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_murmur2",
    "Kafka's murmur2 partitioner, compiled (see stream/contract/partitioner.py).",
    -1, methods,
};

PyMODINIT_FUNC PyInit__murmur2(void)
{
    return PyModule_Create(&module);
}

/* A compiled fast path for OTLP/HTTP protobuf trace exports: body -> span rows.
 *
 * It reads the protobuf wire format of ExportTraceServiceRequest directly and builds the
 * same rows as the reference decoder in collector/otlp.py (`rows_from_protobuf`), without
 * a Python object per KeyValue/AnyValue and without the interpreter's per-span work.
 *
 * It is a fast path only. Whenever it meets anything it does not handle exactly like the
 * reference decoder (a malformed or truncated body, invalid UTF-8, a wire type that does
 * not match the field, a singular message sent twice (protobuf merges those), groups,
 * nesting deeper than MAX_DEPTH, an amount in exponent notation, ...), `decode` returns
 * None and the caller runs the reference decoder, which accepts or refuses the body with
 * its reason. So the two agree by construction on every body this one refuses, and
 * tests/collector/test_otlp_fast.py checks that they agree on the ones it accepts.
 *
 * decode(body: bytes, dumps, option: int, amount) -> tuple[list[tuple], int] | None
 *   dumps  -- orjson.dumps (called as dumps(obj, option=option); the result is decoded)
 *   amount -- the reference `_amount` for q2c.amount values this file does not format
 * Returns (rows, rejected): rows in SPAN_COLUMNS order (collector/span_record.py), and
 * the number of spans rejected for an invalid trace or span id.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "little-endian hosts only (fixed64 and double fields are copied as they are)"
#endif

#define OK 0
#define FALLBACK 1 /* not handled here: the reference decoder decides */
#define FAILED -1  /* a Python exception is set (out of memory) */
#define MAX_DEPTH 48

#define CHECK(expr)                 \
    do {                            \
        int status_ = (expr);       \
        if (status_ != OK)          \
            return status_;         \
    } while (0)

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} Reader;

typedef struct {
    Reader r;       /* the remaining message */
    uint32_t field; /* the field just read */
    int wire;       /* its wire type */
    uint64_t varint;       /* wire 0, 1 (as bits), 5 (as bits) */
    const uint8_t *data;   /* wire 2 */
    Py_ssize_t size;       /* wire 2 */
} Field;

/* ---- wire format --------------------------------------------------------------------- */

static int read_varint(Reader *r, uint64_t *out)
{
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end)
            return FALLBACK;
        uint8_t byte = *r->p++;
        if (shift == 63 && byte > 1)
            return FALLBACK;
        value |= (uint64_t)(byte & 0x7F) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return OK;
        }
    }
    return FALLBACK;
}

/* The next field of a message into f; returns OK, FALLBACK, or 2 at the end. */
static int next_field(Field *f)
{
    if (f->r.p >= f->r.end)
        return 2;
    uint64_t tag;
    CHECK(read_varint(&f->r, &tag));
    if (tag >> 3 == 0 || tag >> 3 > 0x1FFFFFFF)
        return FALLBACK;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    switch (f->wire) {
    case 0:
        return read_varint(&f->r, &f->varint);
    case 1:
        if (f->r.end - f->r.p < 8)
            return FALLBACK;
        memcpy(&f->varint, f->r.p, 8);
        f->r.p += 8;
        return OK;
    case 2: {
        uint64_t size;
        CHECK(read_varint(&f->r, &size));
        if (size > (uint64_t)(f->r.end - f->r.p))
            return FALLBACK;
        f->data = f->r.p;
        f->size = (Py_ssize_t)size;
        f->r.p += size;
        return OK;
    }
    case 5: {
        uint32_t bits;
        if (f->r.end - f->r.p < 4)
            return FALLBACK;
        memcpy(&bits, f->r.p, 4);
        f->varint = bits;
        f->r.p += 4;
        return OK;
    }
    default: /* groups (3, 4) and invalid wire types */
        return FALLBACK;
    }
}

static void start(Field *f, const uint8_t *data, Py_ssize_t size)
{
    f->r.p = data;
    f->r.end = data + size;
}

/* Loop over the fields of a message; `status` is left OK at the end. */
#define EACH_FIELD(f, status) while (((status) = next_field(&(f))) == OK)
#define END_FIELDS(status)   \
    do {                     \
        if ((status) != 2)   \
            return (status); \
    } while (0)
#define EXPECT(f, w)             \
    do {                         \
        if ((f).wire != (w))     \
            return FALLBACK;     \
    } while (0)

/* ---- strings ------------------------------------------------------------------------- */

/* Attribute keys and short values repeat across spans: a direct-mapped cache of recent
 * ASCII strings saves building them again. */
#define CACHE_SLOTS 2048
#define CACHE_MAX_LEN 32
static PyObject *cache[CACHE_SLOTS];

static int is_ascii(const uint8_t *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i] & 0x80)
            return 0;
    return 1;
}

/* A str from UTF-8 bytes (new reference); FALLBACK on invalid UTF-8. */
static int make_str(const uint8_t *p, Py_ssize_t n, PyObject **out)
{
    uint32_t h = 2166136261u;
    uint8_t high = 0;
    if (n <= CACHE_MAX_LEN) {
        for (Py_ssize_t i = 0; i < n; i++) {
            h = (h ^ p[i]) * 16777619u;
            high |= p[i];
        }
    }
    if (n <= CACHE_MAX_LEN && !(high & 0x80)) {
        PyObject **slot = &cache[h % CACHE_SLOTS];
        if (*slot && PyUnicode_GET_LENGTH(*slot) == n &&
            memcmp(PyUnicode_1BYTE_DATA(*slot), p, (size_t)n) == 0) {
            Py_INCREF(*slot);
            *out = *slot;
            return OK;
        }
        PyObject *s = PyUnicode_New(n, 127);
        if (!s)
            return FAILED;
        memcpy(PyUnicode_1BYTE_DATA(s), p, (size_t)n);
        Py_XSETREF(*slot, Py_NewRef(s));
        *out = s;
        return OK;
    }
    PyObject *s = PyUnicode_DecodeUTF8((const char *)p, n, NULL);
    if (!s) {
        if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            return FAILED;
        PyErr_Clear();
        return FALLBACK;
    }
    *out = s;
    return OK;
}

/* A string field that is validated (as the reference does) but not kept. */
static int check_str(const Field *f)
{
    if (is_ascii(f->data, f->size))
        return OK;
    PyObject *s;
    CHECK(make_str(f->data, f->size, &s));
    Py_DECREF(s);
    return OK;
}

static PyObject *hex_of(const uint8_t *p, Py_ssize_t n)
{
    static const char digits[] = "0123456789abcdef";
    PyObject *s = PyUnicode_New(n * 2, 127);
    if (!s)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = (Py_UCS1)digits[p[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[p[i] & 15];
    }
    return s;
}

static PyObject *base64_of(const uint8_t *p, Py_ssize_t n)
{
    static const char table[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    PyObject *s = PyUnicode_New((n + 2) / 3 * 4, 127);
    if (!s)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *out++ = (Py_UCS1)table[v >> 18];
        *out++ = (Py_UCS1)table[(v >> 12) & 63];
        *out++ = (Py_UCS1)table[(v >> 6) & 63];
        *out++ = (Py_UCS1)table[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *out++ = (Py_UCS1)table[v >> 18];
        *out++ = (Py_UCS1)table[(v >> 12) & 63];
        *out++ = i + 1 < n ? (Py_UCS1)table[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    return s;
}

static int all_zero(const uint8_t *p, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

/* ---- AnyValue ------------------------------------------------------------------------ */

static int key_value(const uint8_t *data, Py_ssize_t size, PyObject **key, PyObject **value,
                     int depth, int map_entry);

/* A serialized AnyValue as a plain value (new reference), as `otlp_wire.any_value`. */
static int any_value(const uint8_t *data, Py_ssize_t size, PyObject **out, int depth)
{
    if (depth > MAX_DEPTH)
        return FALLBACK;
    Field f;
    int status, which = 0;
    PyObject *value = NULL;
    start(&f, data, size);
    EACH_FIELD(f, status)
    {
        PyObject *fresh = NULL;
        switch (f.field) {
        case 1: /* string_value */
            if (f.wire != 2)
                goto fallback;
            status = make_str(f.data, f.size, &fresh);
            break;
        case 2: /* bool_value */
            if (f.wire != 0)
                goto fallback;
            fresh = Py_NewRef(f.varint ? Py_True : Py_False);
            break;
        case 3: /* int_value */
            if (f.wire != 0)
                goto fallback;
            fresh = PyLong_FromLongLong((long long)f.varint);
            status = fresh ? OK : FAILED;
            break;
        case 4: { /* double_value */
            if (f.wire != 1)
                goto fallback;
            double d;
            memcpy(&d, &f.varint, 8);
            fresh = PyFloat_FromDouble(d);
            status = fresh ? OK : FAILED;
            break;
        }
        case 5:   /* array_value */
        case 6: { /* kvlist_value */
            if (f.wire != 2 || which == (int)f.field) /* a second one merges: not here */
                goto fallback;
            int is_array = f.field == 5;
            fresh = is_array ? PyList_New(0) : PyDict_New();
            if (!fresh) {
                status = FAILED;
                break;
            }
            Field item;
            int inner;
            start(&item, f.data, f.size);
            EACH_FIELD(item, inner)
            {
                if (item.field != 1)
                    continue;
                if (item.wire != 2) {
                    inner = FALLBACK;
                    break;
                }
                if (is_array) {
                    PyObject *element;
                    inner = any_value(item.data, item.size, &element, depth + 1);
                    if (inner != OK)
                        break;
                    inner = PyList_Append(fresh, element) ? FAILED : OK;
                    Py_DECREF(element);
                } else {
                    PyObject *k, *v;
                    inner = key_value(item.data, item.size, &k, &v, depth + 1, 0);
                    if (inner != OK)
                        break;
                    inner = PyDict_SetItem(fresh, k, v) ? FAILED : OK;
                    Py_DECREF(k);
                    Py_DECREF(v);
                }
                if (inner != OK)
                    break;
            }
            status = inner == 2 ? OK : inner;
            break;
        }
        case 7: /* bytes_value, as base64 text */
            if (f.wire != 2)
                goto fallback;
            fresh = base64_of(f.data, f.size);
            status = fresh ? OK : FAILED;
            break;
        default:
            continue; /* unknown fields are skipped */
        }
        if (status != OK) {
            Py_XDECREF(fresh);
            Py_XDECREF(value);
            return status;
        }
        Py_XSETREF(value, fresh);
        which = (int)f.field;
    }
    if (status != 2) {
        Py_XDECREF(value);
        return status;
    }
    *out = value ? value : Py_NewRef(Py_None);
    return OK;
fallback:
    Py_XDECREF(value);
    return FALLBACK;
}

/* A KeyValue message: key (1) and value (2, an AnyValue message). As an entry of the
 * reference's attribute maps (`map_entry`), an entry with any other field is not put in the
 * map (upb keeps it among the unknown fields): not handled here. */
static int key_value(const uint8_t *data, Py_ssize_t size, PyObject **key, PyObject **value,
                     int depth, int map_entry)
{
    Field f;
    int status, seen_value = 0;
    const uint8_t *key_data = (const uint8_t *)"", *value_data = NULL;
    Py_ssize_t key_size = 0, value_size = 0;
    start(&f, data, size);
    EACH_FIELD(f, status)
    {
        if (f.field == 1) {
            EXPECT(f, 2);
            CHECK(check_str(&f));
            key_data = f.data;
            key_size = f.size;
        } else if (f.field == 2) {
            EXPECT(f, 2);
            if (seen_value++)
                return FALLBACK;
            value_data = f.data;
            value_size = f.size;
        } else if (map_entry) {
            return FALLBACK;
        }
    }
    END_FIELDS(status);
    CHECK(make_str(key_data, key_size, key));
    if (!value_data) {
        *value = Py_NewRef(Py_None);
        return OK;
    }
    status = any_value(value_data, value_size, value, depth + 1);
    if (status != OK)
        Py_CLEAR(*key);
    return status;
}

/* One entry of an attribute list into `into` (key -> plain value; the last key wins). */
static int attribute(PyObject *into, const Field *entry)
{
    PyObject *key, *value;
    CHECK(key_value(entry->data, entry->size, &key, &value, 0, 1));
    int failed = PyDict_SetItem(into, key, value);
    Py_DECREF(key);
    Py_DECREF(value);
    return failed ? FAILED : OK;
}

/* ---- the rows ------------------------------------------------------------------------ */

typedef struct {
    PyObject *dumps;
    PyObject *option;
    PyObject *amount;       /* the reference `_amount` */
} Tools;

static PyObject *s_empty, *s_unknown_service, *s_service_name, *s_name, *s_time,
    *s_attributes, *s_lower, *s_upper, *s_deal, *s_contract, *s_project, *s_invoice,
    *s_system, *s_flow, *s_stage, *s_amount, *s_currency;
static PyObject *s_option_names; /* ("option",) */
static PyObject *kind_names[6], *status_names[3], *system_names[5];

/* orjson.dumps(obj, option=...) as str, or FALLBACK if it refuses. */
static int to_json(const Tools *tools, PyObject *obj, PyObject **out)
{
    /* keyword names must be interned: orjson compares them by identity */
    PyObject *args[2] = {obj, tools->option};
    PyObject *encoded = PyObject_Vectorcall(tools->dumps, args, 1, s_option_names);
    if (!encoded) {
        PyErr_Clear();
        return FALLBACK;
    }
    *out = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded), NULL);
    Py_DECREF(encoded);
    return *out ? OK : FAILED;
}

/* `_lifted`: an attribute as column text; "" for none, a list or a map. */
static PyObject *lifted(PyObject *value, Py_ssize_t limit)
{
    if (!value || value == Py_None || PyDict_Check(value) || PyList_Check(value))
        return Py_NewRef(s_empty);
    PyObject *text = PyUnicode_Check(value) ? Py_NewRef(value) : PyObject_Str(value);
    if (!text)
        return NULL;
    if (PyUnicode_GET_LENGTH(text) <= limit)
        return text;
    PyObject *cut = PyUnicode_Substring(text, 0, limit);
    Py_DECREF(text);
    return cut;
}

static PyObject *call_method(PyObject *text, PyObject *name)
{
    PyObject *result = PyObject_CallMethodNoArgs(text, name);
    Py_DECREF(text);
    return result;
}

/* A float as money text, quantized to cents with ROUND_HALF_EVEN as Decimal(str(x)) does;
 * NULL (no exception) when it is not a plain positional repr (exponent, inf, nan). */
static PyObject *float_amount(double value)
{
    char *repr = PyOS_double_to_string(value, 'r', 0, 0, NULL);
    if (!repr)
        return NULL;
    const char *p = repr;
    int negative = *p == '-';
    if (negative)
        p++;
    /* digits of the integer part and the fraction, without the point */
    char digits[64];
    int whole = 0, fraction = 0, ok = 1;
    for (; *p >= '0' && *p <= '9' && whole < 40; p++)
        digits[whole++] = *p;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9' && whole + fraction < 60; p++)
            digits[whole + fraction++] = *p;
    if (*p != '\0' || whole == 0)
        ok = 0; /* an exponent, inf or nan: the reference formats those */
    PyMem_Free(repr);
    if (!ok)
        return NULL;
    while (fraction < 3)
        digits[whole + fraction++] = '0';
    int kept = whole + 2; /* digits[0:kept] are kept */
    int up = 0;
    char first = digits[kept];
    if (first > '5') {
        up = 1;
    } else if (first == '5') {
        int rest = 0;
        for (int i = kept + 1; i < whole + fraction; i++)
            rest |= digits[i] != '0';
        up = rest || ((digits[kept - 1] - '0') & 1);
    }
    char out[72];
    int n = 0, carry = up;
    char rounded[64];
    for (int i = kept - 1; i >= 0; i--) {
        int d = digits[i] - '0' + carry;
        carry = d == 10;
        rounded[i] = (char)('0' + (carry ? 0 : d));
    }
    if (negative)
        out[n++] = '-';
    if (carry)
        out[n++] = '1';
    memcpy(out + n, rounded, (size_t)whole);
    n += whole;
    out[n++] = '.';
    out[n++] = rounded[whole];
    out[n++] = rounded[whole + 1];
    return PyUnicode_FromStringAndSize(out, n);
}

/* The q2c.amount column: "" for none, floats and ints here, the rest by the reference. */
static PyObject *amount_text(const Tools *tools, PyObject *value)
{
    if (!value || value == Py_None || PyBool_Check(value))
        return Py_NewRef(s_empty);
    if (PyFloat_CheckExact(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        if (!isfinite(d))
            return Py_NewRef(s_empty);
        PyObject *text = float_amount(d);
        if (text || PyErr_Occurred())
            return text;
    } else if (PyLong_CheckExact(value)) {
        int overflow;
        long long whole = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow)
            return PyUnicode_FromFormat("%lld.00", whole);
    }
    return PyObject_CallOneArg(tools->amount, value);
}

static int is_truthy(PyObject *value)
{
    return value && PyObject_IsTrue(value) == 1;
}

/* `span_record.lift`: the q2c columns from deal_id to currency, appended to `row` at `at`. */
static int lift(const Tools *tools, PyObject *attributes, PyObject *row, Py_ssize_t at)
{
    PyObject *columns[9];
    PyObject *system = PyDict_GetItemWithError(attributes, s_system);
    PyObject *currency = PyDict_GetItemWithError(attributes, s_currency);
    if (PyErr_Occurred())
        return FAILED;
    columns[0] = lifted(PyDict_GetItem(attributes, s_deal), 128);
    columns[1] = lifted(PyDict_GetItem(attributes, s_contract), 128);
    columns[2] = lifted(PyDict_GetItem(attributes, s_project), 128);
    columns[3] = lifted(PyDict_GetItem(attributes, s_invoice), 128);
    columns[4] = Py_NewRef(s_empty);
    if (is_truthy(system)) {
        PyObject *lower = lifted(system, 16);
        lower = lower ? call_method(lower, s_lower) : NULL;
        if (lower) {
            for (int i = 0; i < 5; i++)
                if (PyUnicode_Compare(lower, system_names[i]) == 0) {
                    Py_SETREF(columns[4], Py_NewRef(system_names[i]));
                    break;
                }
            Py_DECREF(lower);
        } else {
            Py_CLEAR(columns[4]);
        }
    }
    columns[5] = lifted(PyDict_GetItem(attributes, s_flow), 64);
    columns[6] = lifted(PyDict_GetItem(attributes, s_stage), 32);
    columns[7] = amount_text(tools, PyDict_GetItem(attributes, s_amount));
    PyObject *code = lifted(currency, 3);
    columns[8] = code ? call_method(code, s_upper) : NULL;
    int failed = 0;
    for (int i = 0; i < 9; i++) {
        if (!columns[i])
            failed = 1;
        PyTuple_SET_ITEM(row, at + i, columns[i] ? columns[i] : Py_NewRef(s_empty));
    }
    return failed ? FAILED : OK;
}

typedef struct {
    const Tools *tools;
    PyObject *rows;
    Py_ssize_t rejected;
    PyObject *service;       /* of the current resource */
    PyObject *resource_json; /* of the current resource */
} Batch;

static int event(PyObject *events, const Field *f)
{
    Field e;
    int status;
    uint64_t time = 0;
    const uint8_t *name_data = (const uint8_t *)"";
    Py_ssize_t name_size = 0;
    PyObject *attributes = PyDict_New(), *name = NULL, *item = NULL;
    if (!attributes)
        return FAILED;
    start(&e, f->data, f->size);
    EACH_FIELD(e, status)
    {
        static const int wires[5] = {-1, 1, 2, 2, 0};
        if (e.field > 4)
            continue;
        if (e.wire != wires[e.field]) {
            status = FALLBACK;
            break;
        }
        if (e.field == 1) {
            time = e.varint;
        } else if (e.field == 2) {
            if ((status = check_str(&e)) != OK)
                break;
            name_data = e.data;
            name_size = e.size;
        } else if (e.field == 3) {
            if ((status = attribute(attributes, &e)) != OK)
                break;
        }
    }
    if (status == 2)
        status = make_str(name_data, name_size, &name);
    if (status == OK) {
        PyObject *at = PyLong_FromUnsignedLongLong(time);
        item = at ? PyDict_New() : NULL;
        status = item && !PyDict_SetItem(item, s_name, name) && !PyDict_SetItem(item, s_time, at) &&
                         !PyDict_SetItem(item, s_attributes, attributes) &&
                         !PyList_Append(events, item)
                     ? OK
                     : FAILED;
        Py_XDECREF(at);
    }
    Py_XDECREF(item);
    Py_XDECREF(name);
    Py_DECREF(attributes);
    return status;
}

/* A Link or InstrumentationScope: validated as the reference does, nothing kept. */
static int check_message(const Field *f, int is_link)
{
    Field m;
    int status;
    start(&m, f->data, f->size);
    EACH_FIELD(m, status)
    {
        /* Link: 1, 2 bytes; 3 string; 4 KeyValue; 5 uint32; 6 fixed32.
         * InstrumentationScope: 1, 2 string; 3 KeyValue; 4 uint32. */
        int expected, is_string = 0, is_kv = 0;
        if (is_link) {
            int wires[] = {-1, 2, 2, 2, 2, 0, 5};
            if (m.field > 6)
                continue;
            expected = wires[m.field];
            is_string = m.field == 3;
            is_kv = m.field == 4;
        } else {
            int wires[] = {-1, 2, 2, 2, 0};
            if (m.field > 4)
                continue;
            expected = wires[m.field];
            is_string = m.field <= 2;
            is_kv = m.field == 3;
        }
        EXPECT(m, expected);
        if (is_string)
            CHECK(check_str(&m));
        if (is_kv) {
            PyObject *k, *v;
            CHECK(key_value(m.data, m.size, &k, &v, 0, 0));
            Py_DECREF(k);
            Py_DECREF(v);
        }
    }
    END_FIELDS(status);
    return OK;
}

/* Wire types of the Span fields 1-16 (-1: none). */
static const int span_wires[17] = {-1, 2, 2, 2, 2, 2, 0, 1, 1, 2, 0, 2, 0, 2, 0, 2, 5};

static int span(Batch *b, const Field *f)
{
    Field s;
    int status, seen_status = 0;
    const uint8_t *trace = NULL, *id = NULL, *parent = NULL;
    Py_ssize_t trace_size = 0, id_size = 0, parent_size = 0;
    const uint8_t *name_data = (const uint8_t *)"", *message_data = (const uint8_t *)"";
    Py_ssize_t name_size = 0, message_size = 0;
    int64_t kind = 0, code = 0;
    uint64_t started = 0, ended = 0;
    PyObject *attributes = PyDict_New(), *events = PyList_New(0);
    if (!attributes || !events) {
        status = FAILED;
        goto done;
    }
    start(&s, f->data, f->size);
    EACH_FIELD(s, status)
    {
        if (s.field > 16)
            continue;
        if (s.wire != span_wires[s.field]) {
            status = FALLBACK;
            break;
        }
        switch (s.field) {
        case 1:
            trace = s.data, trace_size = s.size;
            break;
        case 2:
            id = s.data, id_size = s.size;
            break;
        case 3:
            status = check_str(&s);
            break;
        case 4:
            parent = s.data, parent_size = s.size;
            break;
        case 5:
            status = check_str(&s);
            name_data = s.data, name_size = s.size;
            break;
        case 6:
            kind = (int32_t)(uint32_t)s.varint;
            break;
        case 7:
            started = s.varint;
            break;
        case 8:
            ended = s.varint;
            break;
        case 9:
            status = attribute(attributes, &s);
            break;
        case 11:
            status = event(events, &s);
            break;
        case 13:
            status = check_message(&s, 1);
            break;
        case 15: {
            if (seen_status++) {
                status = FALLBACK;
                break;
            }
            Field m;
            int inner;
            start(&m, s.data, s.size);
            EACH_FIELD(m, inner)
            {
                if ((m.field == 2 && m.wire != 2) || (m.field == 3 && m.wire != 0)) {
                    inner = FALLBACK;
                    break;
                }
                if (m.field == 2) {
                    if ((inner = check_str(&m)) != OK)
                        break;
                    message_data = m.data, message_size = m.size;
                } else if (m.field == 3) {
                    code = (int32_t)(uint32_t)m.varint;
                }
            }
            status = inner == 2 ? OK : inner;
            break;
        }
        default: /* flags, dropped counts */
            break;
        }
        if (status != OK)
            break;
    }
    if (status != 2)
        goto done;
    status = OK;
    if (trace_size != 16 || id_size != 8 || all_zero(trace, 16) || all_zero(id, 8)) {
        b->rejected++;
        goto done;
    }
    PyObject *row = PyTuple_New(22);
    if (!row) {
        status = FAILED;
        goto done;
    }
    PyObject *name = NULL, *message = NULL;
    status = make_str(name_data, name_size, &name);
    if (status == OK)
        status = make_str(message_data, message_size, &message);
    if (status != OK) {
        Py_XDECREF(name);
        Py_DECREF(row);
        goto done;
    }
    if (PyUnicode_GET_LENGTH(name) > 256)
        Py_SETREF(name, PyUnicode_Substring(name, 0, 256));
    PyObject *attributes_json = NULL, *events_json = NULL;
    status = to_json(b->tools, attributes, &attributes_json);
    if (status == OK) {
        if (PyList_GET_SIZE(events))
            status = to_json(b->tools, events, &events_json);
        else
            events_json = Py_NewRef(s_empty);
    }
    PyTuple_SET_ITEM(row, 0, hex_of(trace, 16));
    PyTuple_SET_ITEM(row, 1, hex_of(id, 8));
    PyTuple_SET_ITEM(row, 2,
                     parent_size == 8 && !all_zero(parent, 8) ? hex_of(parent, 8)
                                                              : Py_NewRef(s_empty));
    PyTuple_SET_ITEM(row, 3, name);
    PyTuple_SET_ITEM(row, 4, Py_NewRef(b->service));
    PyTuple_SET_ITEM(row, 5, Py_NewRef(kind >= 0 && kind < 6 ? kind_names[kind] : kind_names[0]));
    PyTuple_SET_ITEM(row, 6, PyLong_FromUnsignedLongLong(started));
    PyTuple_SET_ITEM(row, 7, PyLong_FromUnsignedLongLong(ended));
    PyTuple_SET_ITEM(row, 8,
                     Py_NewRef(code >= 0 && code < 3 ? status_names[code] : status_names[0]));
    PyTuple_SET_ITEM(row, 9, message);
    PyTuple_SET_ITEM(row, 10, attributes_json);
    PyTuple_SET_ITEM(row, 11, Py_NewRef(b->resource_json));
    PyTuple_SET_ITEM(row, 12, events_json);
    if (status == OK)
        status = lift(b->tools, attributes, row, 13);
    else
        for (int i = 13; i < 22; i++)
            PyTuple_SET_ITEM(row, i, Py_NewRef(s_empty));
    for (int i = 0; i < 13 && status == OK; i++)
        if (!PyTuple_GET_ITEM(row, i))
            status = FAILED;
    if (status == OK) {
        /* Only str and int inside: no cycle can go through it, so the garbage collector
         * need not visit it (as it would decide itself at its next pass, after the cost). */
        PyObject_GC_UnTrack(row);
        if (PyList_Append(b->rows, row))
            status = FAILED;
    }
    Py_DECREF(row); /* NULL items are fine for the tuple's deallocator */
done:
    Py_XDECREF(attributes);
    Py_XDECREF(events);
    return status;
}

static int scope_spans(Batch *b, const Field *f)
{
    Field s;
    int status, seen_scope = 0;
    start(&s, f->data, f->size);
    EACH_FIELD(s, status)
    {
        if (s.field > 3)
            continue;
        EXPECT(s, 2);
        if (s.field == 1) {
            if (seen_scope++)
                return FALLBACK;
            CHECK(check_message(&s, 0));
        } else if (s.field == 2) {
            CHECK(span(b, &s));
        } else {
            CHECK(check_str(&s));
        }
    }
    END_FIELDS(status);
    return OK;
}

/* The resource of a ResourceSpans: service name and attribute JSON into the batch. */
static int resource(Batch *b, const Field *f)
{
    Field r;
    int status;
    PyObject *attributes = PyDict_New();
    if (!attributes)
        return FAILED;
    start(&r, f->data, f->size);
    EACH_FIELD(r, status)
    {
        if (r.field == 1) {
            status = r.wire == 2 ? attribute(attributes, &r) : FALLBACK;
        } else if (r.field == 2 && r.wire != 0) {
            status = FALLBACK;
        }
        if (status != OK)
            break;
    }
    if (status != 2) {
        Py_DECREF(attributes);
        return status;
    }
    status = OK;
    if (PyDict_GET_SIZE(attributes)) {
        Py_CLEAR(b->resource_json);
        status = to_json(b->tools, attributes, &b->resource_json);
        PyObject *service = PyDict_GetItem(attributes, s_service_name);
        if (status == OK && is_truthy(service)) { /* str() of any value, as the reference */
            PyObject *text = PyUnicode_Check(service) ? Py_NewRef(service) : PyObject_Str(service);
            if (text && PyUnicode_GET_LENGTH(text) > 128)
                Py_SETREF(text, PyUnicode_Substring(text, 0, 128));
            if (text)
                Py_SETREF(b->service, text);
            else
                status = FAILED;
        }
    }
    Py_DECREF(attributes);
    return status;
}

static int resource_spans(Batch *b, const Field *f)
{
    Field r;
    int status, seen_resource = 0;
    Py_SETREF(b->service, Py_NewRef(s_unknown_service));
    Py_SETREF(b->resource_json, Py_NewRef(s_empty));
    /* The resource first, wherever it is, then the spans in order. */
    start(&r, f->data, f->size);
    EACH_FIELD(r, status)
    {
        if (r.field > 3)
            continue;
        EXPECT(r, 2);
        if (r.field == 1) {
            if (seen_resource++)
                return FALLBACK;
            CHECK(resource(b, &r));
        } else if (r.field == 3) {
            CHECK(check_str(&r));
        }
    }
    END_FIELDS(status);
    start(&r, f->data, f->size);
    EACH_FIELD(r, status)
    {
        if (r.field == 2)
            CHECK(scope_spans(b, &r));
    }
    END_FIELDS(status);
    return OK;
}

static PyObject *decode(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode(body: bytes, dumps, option, amount)");
        return NULL;
    }
    Tools tools = {args[1], args[2], args[3]};
    Batch b = {&tools, PyList_New(0), 0, Py_NewRef(s_unknown_service), Py_NewRef(s_empty)};
    int status = b.rows ? OK : FAILED;
    if (status == OK) {
        Field f;
        start(&f, (const uint8_t *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]));
        while ((status = next_field(&f)) == OK) {
            if (f.field != 1)
                continue;
            if (f.wire != 2) {
                status = FALLBACK;
                break;
            }
            if ((status = resource_spans(&b, &f)) != OK)
                break;
        }
        if (status == 2)
            status = OK;
    }
    Py_XDECREF(b.service);
    Py_XDECREF(b.resource_json);
    if (status != OK) {
        Py_XDECREF(b.rows);
        if (status == FAILED)
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *result = Py_BuildValue("(Nn)", b.rows, b.rejected);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", (PyCFunction)(void (*)(void))decode, METH_FASTCALL,
     "decode(body, dumps, option, amount) -> (rows, rejected) or None (use the reference)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_otlp_fast", "Compiled fast path of collector.otlp.", -1, methods,
    NULL, NULL, NULL, NULL,
};

static int intern(PyObject **slot, const char *text)
{
    *slot = PyUnicode_InternFromString(text);
    return *slot ? 0 : -1;
}

PyMODINIT_FUNC PyInit__otlp_fast(void)
{
    static const char *kinds[] = {"unspecified", "internal", "server",
                                  "client",      "producer", "consumer"};
    static const char *statuses[] = {"unset", "ok", "error"};
    static const char *systems[] = {"crm", "clm", "psa", "billing", "erp"};
    for (int i = 0; i < 6; i++)
        if (intern(&kind_names[i], kinds[i]))
            return NULL;
    for (int i = 0; i < 3; i++)
        if (intern(&status_names[i], statuses[i]))
            return NULL;
    for (int i = 0; i < 5; i++)
        if (intern(&system_names[i], systems[i]))
            return NULL;
    if (intern(&s_empty, "") || intern(&s_unknown_service, "unknown_service") ||
        intern(&s_service_name, "service.name") || intern(&s_name, "name") ||
        intern(&s_time, "time_unix_nano") || intern(&s_attributes, "attributes") ||
        intern(&s_lower, "lower") || intern(&s_upper, "upper") ||
        intern(&s_deal, "q2c.deal.id") || intern(&s_contract, "q2c.contract.id") ||
        intern(&s_project, "q2c.project.id") || intern(&s_invoice, "q2c.invoice.id") ||
        intern(&s_system, "q2c.system") || intern(&s_flow, "q2c.flow") ||
        intern(&s_stage, "q2c.stage") || intern(&s_amount, "q2c.amount") ||
        intern(&s_currency, "q2c.currency"))
        return NULL;
    PyObject *option;
    if (intern(&option, "option") || !(s_option_names = PyTuple_Pack(1, option)))
        return NULL;
    return PyModule_Create(&module_def);
}

/*
 * The extraction detector's per-query arithmetic in C (evaluations.engine.extraction.detection).
 *
 * The serving monitor judges every answered query on the request path. In numpy each monitor is a dozen or two
 * small array operations (a few microseconds each in a busy web worker), which is most of what the guard costs
 * a request; here each is one call. Every function checks its arguments (dtype, contiguity, sizes) and raises
 * ValueError or TypeError rather than read out of bounds. Without this module (no C compiler where the package
 * was installed) detection.py runs its numpy versions, which measure the same quantities (up to float rounding).
 *
 * Sums run over eight independent lanes, added up in a fixed order: the result is the same on every machine
 * and compiler (no FMA contraction, no reassociation), and the loops vectorise on the baseline instruction set.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <string.h>

#define LANES 8

typedef struct {
    Py_buffer view;
    char kind; /* 'f' float32, 'd' float64 */
    Py_ssize_t n; /* items */
} Array;

static void release(Array *a) {
    if (a->view.obj != NULL) {
        PyBuffer_Release(&a->view);
    }
}

/* A C-contiguous buffer of float32 or float64 items (``allowed`` lists the kinds accepted). */
static int get_array(PyObject *obj, Array *out, const char *allowed, const char *name) {
    memset(out, 0, sizeof(*out));
    if (PyObject_GetBuffer(obj, &out->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyErr_Format(PyExc_TypeError, "%s must be a C-contiguous numeric array", name);
        return -1;
    }
    const char *format = out->view.format == NULL ? "B" : out->view.format;
    if (format[0] == '<' || format[0] == '=' || format[0] == '@') {
        format++;
    }
    char kind = 0;
    if (format[0] == 'f' && format[1] == '\0' && out->view.itemsize == 4) {
        kind = 'f';
    } else if (format[0] == 'd' && format[1] == '\0' && out->view.itemsize == 8) {
        kind = 'd';
    }
    if (kind == 0 || strchr(allowed, kind) == NULL) {
        const char *wanted = strcmp(allowed, "f") == 0 ? "float32" : "float32 or float64";
        if (strcmp(allowed, "d") == 0) {
            wanted = "float64";
        }
        PyErr_Format(PyExc_TypeError, "%s must hold %s values", name, wanted);
        PyBuffer_Release(&out->view);
        out->view.obj = NULL;
        return -1;
    }
    out->kind = kind;
    out->n = out->view.len / out->view.itemsize;
    return 0;
}

static int check_rows(const Array *data, Py_ssize_t size, Py_ssize_t width, const char *name) {
    if (size < 0 || width <= 0 || (size > 0 && data->n / width < size)) {
        PyErr_Format(PyExc_ValueError, "%s holds %zd values: fewer than %zd rows of %zd", name, data->n, size, width);
        return -1;
    }
    return 0;
}

/*
 * sum_j (row_j - q_j)^2 in TYPE: eight lanes, then the lanes in order, then the tail. One definition per
 * precision: float64 for PRADA's distances, float32 for the edit monitor's.
 */
#define SQUARED_DISTANCE(NAME, TYPE)                                      \
    static TYPE NAME(const TYPE *row, const TYPE *q, Py_ssize_t dim) {    \
        TYPE acc[LANES] = {0};                                            \
        Py_ssize_t j = 0;                                                 \
        for (; j + LANES <= dim; j += LANES) {                            \
            for (int k = 0; k < LANES; k++) {                             \
                TYPE diff = row[j + k] - q[j + k];                        \
                acc[k] += diff * diff;                                    \
            }                                                             \
        }                                                                 \
        TYPE total = 0;                                                   \
        for (int k = 0; k < LANES; k++) {                                 \
            total += acc[k];                                              \
        }                                                                 \
        for (; j < dim; j++) {                                            \
            TYPE diff = row[j] - q[j];                                    \
            total += diff * diff;                                         \
        }                                                                 \
        return total;                                                     \
    }

SQUARED_DISTANCE(squared_distance, double)
SQUARED_DISTANCE(squared_distancef, float)

static double lanes_sum(const double *acc) {
    double total = 0.0;
    for (int k = 0; k < LANES; k++) {
        total += acc[k];
    }
    return total;
}

static float lanes_sumf(const float *acc) {
    float total = 0.0f;
    for (int k = 0; k < LANES; k++) {
        total += acc[k];
    }
    return total;
}

/* the smallest squared distance from the query (float64, or float32 widened exactly) to the first ``size`` rows */
static double nearest_squared(const double *rows, Py_ssize_t size, Py_ssize_t dim, const Array *x, double *scratch) {
    const double *q = (const double *)x->view.buf;
    if (x->kind == 'f') {
        const float *xf = (const float *)x->view.buf;
        for (Py_ssize_t j = 0; j < dim; j++) {
            scratch[j] = (double)xf[j];
        }
        q = scratch;
    }
    double best = INFINITY;
    for (Py_ssize_t i = 0; i < size; i++) {
        double d2 = squared_distance(rows + i * dim, q, dim);
        if (d2 < best) {
            best = d2;
        }
    }
    return best;
}

static float squared_normf(const float *v, Py_ssize_t n) {
    float acc[LANES] = {0};
    Py_ssize_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        for (int k = 0; k < LANES; k++) {
            acc[k] += v[j + k] * v[j + k];
        }
    }
    float total = lanes_sumf(acc);
    for (; j < n; j++) {
        total += v[j] * v[j];
    }
    return total;
}

/* whether the query is a small edit of one of the first ``size`` history rows (see edit_step's doc) */
static int edit_scan(const float *rows, Py_ssize_t size, Py_ssize_t dim, const float *query, double qnorm,
                     double max_change) {
    /* float32 norms are off by at most about dim * eps * norm each: the bound never rules out a row that passes */
    const double screen = max_change + 16.0 * (double)dim * (double)FLT_EPSILON;
    for (Py_ssize_t i = 0; i < size; i++) {
        const float *row = rows + i * (dim + 2);
        double enorm = (double)row[dim + 1];
        double half = (enorm + qnorm) / 2.0;
        if (half < 1e-12) {
            half = 1e-12;
        }
        if (fabs(enorm - qnorm) > screen * half) {
            continue;
        }
        double change = sqrt((double)squared_distancef(row, query, dim)) / half;
        if (change > 0.0 && change <= max_change) {
            return 1;
        }
    }
    return 0;
}

/* row ``[x, |x|^2, |x|]`` (float32); returns |x| */
static float write_history_row(float *row, const float *x, Py_ssize_t dim) {
    memcpy(row, x, sizeof(float) * (size_t)dim);
    float length = sqrtf(squared_normf(x, dim));
    row[dim] = length * length;
    row[dim + 1] = length;
    return length;
}

static double mean_minus_std_of(const double *v, Py_ssize_t n) {
    double acc[LANES] = {0};
    Py_ssize_t i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int k = 0; k < LANES; k++) {
            acc[k] += v[i + k];
        }
    }
    double total = lanes_sum(acc);
    for (; i < n; i++) {
        total += v[i];
    }
    double mean = total / (double)n;
    double dev[LANES] = {0};
    i = 0;
    for (; i + LANES <= n; i += LANES) {
        for (int k = 0; k < LANES; k++) {
            double d = v[i + k] - mean;
            dev[k] += d * d;
        }
    }
    double squares = lanes_sum(dev);
    for (; i < n; i++) {
        double d = v[i] - mean;
        squares += d * d;
    }
    return mean - sqrt(squares / (double)n);
}

/* two arrays, or neither: the first is released when the second cannot be read */
static int get_arrays(PyObject *first_obj, Array *first, const char *first_kinds, const char *first_name,
                      PyObject *second_obj, Array *second, const char *second_kinds, const char *second_name) {
    if (get_array(first_obj, first, first_kinds, first_name) < 0) {
        return -1;
    }
    if (get_array(second_obj, second, second_kinds, second_name) < 0) {
        release(first);
        return -1;
    }
    return 0;
}

static int writable(const Array *a, const char *name) {
    if (a->view.readonly) {
        PyErr_Format(PyExc_ValueError, "%s is read-only", name);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(edit_step_doc,
"edit_step(data, size, x, max_change, judge) -> bool | None\n\n"
"The edit monitor's step for one float32 query ``x`` (``dim`` values): with ``judge``, whether it is a small edit\n"
"of one of the first ``size`` rows of the history ``data`` (float32 rows of ``dim + 2``: the values, their\n"
"squared norm, their norm): for some row ``e``, ``0 < |e - q| / h <= max_change`` with\n"
"``h = max((|e| + |q|) / 2, 1e-12)``, the distances and norms float32 sums; a row whose norm alone rules it out\n"
"(the difference of the norms is a lower bound of ``|e - q|``, loosened by 16 * dim float32 epsilons, more than\n"
"the norms' rounding) is skipped. None when ``size`` is 0. Then ``x`` is written as row ``size`` with its\n"
"squared norm and norm. Without ``judge`` (a replayed query) it only writes the row and returns None. ``data``\n"
"must have room for row ``size``.");

static PyObject *edit_step(PyObject *self, PyObject *args) {
    PyObject *data_obj, *x_obj;
    Py_ssize_t size;
    double max_change;
    int judge;
    if (!PyArg_ParseTuple(args, "OnOdp:edit_step", &data_obj, &size, &x_obj, &max_change, &judge)) {
        return NULL;
    }
    Array data, x;
    if (get_arrays(data_obj, &data, "f", "data", x_obj, &x, "f", "x") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    Py_ssize_t dim = x.n;
    if (writable(&data, "data") < 0) {
        goto done;
    }
    if (size < 0 || !(max_change >= 0.0)) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 0 and max_change >= 0");
        goto done;
    }
    if (check_rows(&data, size + 1, dim + 2, "data") < 0) {
        goto done;
    }
    float *rows = (float *)data.view.buf;
    const float *query = (const float *)x.view.buf;
    int edit = -1;
    if (judge && size > 0) {
        double qnorm = (double)sqrtf(squared_normf(query, dim));
        edit = edit_scan(rows, size, dim, query, qnorm, max_change);
    }
    write_history_row(rows + size * (dim + 2), query, dim);
    if (edit < 0) {
        result = Py_NewRef(Py_None);
    } else {
        result = PyBool_FromLong(edit);
    }
done:
    release(&data);
    release(&x);
    return result;
}

PyDoc_STRVAR(prada_step_doc,
"prada_step(data, size, kept, n_kept, threshold, distances, n_distances, x, distance) -> (d, joined, threshold,\n"
"changed)\n\n"
"PRADA's step for a query ``x`` (float32 or float64, ``dim`` values) of a class whose growing set holds the first\n"
"``size >= 1`` rows of ``data`` (float64) and the distances ``kept[:n_kept]`` of the points that joined it, over\n"
"the set's ``threshold``. ``d`` is ``distance`` when it is a number (a replayed measurement), else, when it is\n"
"NaN, the smallest L2 distance of ``x`` to the set, in float64. ``d`` is written to\n"
"``distances[n_distances]``; when ``d > threshold``, ``x`` joins the set as row ``size``, ``d`` is written to\n"
"``kept[n_kept]`` and the threshold becomes ``max(threshold, mean - std)`` of the kept distances (population\n"
"std). Returns ``d``, whether ``x`` joined, the threshold, and whether ``d`` differs from\n"
"``distances[n_distances - 1]`` (False for the first). Every buffer must have room for its next value.");

static PyObject *prada_step(PyObject *self, PyObject *args) {
    PyObject *data_obj, *kept_obj, *distances_obj, *x_obj;
    Py_ssize_t size, n_kept, n_distances;
    double threshold, distance;
    if (!PyArg_ParseTuple(args, "OnOndOnOd:prada_step", &data_obj, &size, &kept_obj, &n_kept, &threshold,
                          &distances_obj, &n_distances, &x_obj, &distance)) {
        return NULL;
    }
    Array data, kept, distances, x;
    memset(&kept, 0, sizeof(kept));
    memset(&distances, 0, sizeof(distances));
    memset(&x, 0, sizeof(x));
    if (get_array(data_obj, &data, "d", "data") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    double *scratch = NULL;
    if (get_array(kept_obj, &kept, "d", "kept") < 0 || get_array(distances_obj, &distances, "d", "distances") < 0 ||
        get_array(x_obj, &x, "fd", "x") < 0) {
        goto done;
    }
    Py_ssize_t dim = x.n;
    if (writable(&data, "data") < 0 || writable(&kept, "kept") < 0 || writable(&distances, "distances") < 0) {
        goto done;
    }
    if (size < 1 || n_kept < 0 || n_distances < 0) {
        PyErr_SetString(PyExc_ValueError, "size must be >= 1, n_kept and n_distances >= 0");
        goto done;
    }
    if (check_rows(&data, size + 1, dim, "data") < 0 || check_rows(&kept, n_kept + 1, 1, "kept") < 0 ||
        check_rows(&distances, n_distances + 1, 1, "distances") < 0) {
        goto done;
    }
    double *rows = (double *)data.view.buf;
    if (isnan(distance)) {
        scratch = PyMem_Malloc(sizeof(double) * (size_t)dim);
        if (scratch == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        distance = sqrt(nearest_squared(rows, size, dim, &x, scratch));
    }
    double *ds = (double *)distances.view.buf;
    int changed = n_distances > 0 && distance != ds[n_distances - 1];
    ds[n_distances] = distance;
    int joined = distance > threshold;
    if (joined) {
        double *row = rows + size * dim;
        if (x.kind == 'f') {
            const float *xf = (const float *)x.view.buf;
            for (Py_ssize_t j = 0; j < dim; j++) {
                row[j] = (double)xf[j];
            }
        } else {
            memcpy(row, x.view.buf, sizeof(double) * (size_t)dim);
        }
        double *ks = (double *)kept.view.buf;
        ks[n_kept] = distance;
        double candidate = mean_minus_std_of(ks, n_kept + 1);
        if (candidate > threshold) {
            threshold = candidate;
        }
    }
    result = Py_BuildValue("(dNdN)", distance, PyBool_FromLong(joined), threshold, PyBool_FromLong(changed));
done:
    PyMem_Free(scratch);
    release(&data);
    release(&kept);
    release(&distances);
    release(&x);
    return result;
}

/* index of the first value of sorted[0:count] that is >= value */
static Py_ssize_t lower_bound(const double *sorted, Py_ssize_t count, double value) {
    Py_ssize_t low = 0, high = count;
    while (low < high) {
        Py_ssize_t middle = low + (high - low) / 2;
        if (sorted[middle] < value) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return low;
}

PyDoc_STRVAR(shapiro_window_doc,
"shapiro_window(distances, n, window, merged, limit, a) -> float\n\n"
"PRADA's Shapiro-Wilk ``W`` of the latest ``m = min(n, limit)`` values of ``distances[:n]`` (float64, finite), with\n"
"the coefficients ``a`` (float64, ``m // 2`` values, as scipy's ``swilk`` computes them for ``m`` values).\n"
"``window`` (float64, room for ``min(n, limit)`` values) holds, sorted, the latest ``min(merged, limit)`` of\n"
"``distances[:merged]`` (the caller's running order statistics, ``merged <= n``): the values from ``merged`` to\n"
"``n`` are inserted (and those leaving the latest ``limit`` taken out), so that no query sorts the whole window;\n"
"on return it holds the latest ``m`` of ``distances[:n]``. ``W`` is computed from the sorted values shifted by\n"
"the middle one in arrival order, with the operations of scipy's ``swilk`` in its order (the same value to the\n"
"bit): 1.0 when their range is under 1e-19, at least 0.75 for 3 values.");

static PyObject *shapiro_window(PyObject *self, PyObject *args) {
    PyObject *distances_obj, *window_obj, *a_obj;
    Py_ssize_t n, merged, limit;
    if (!PyArg_ParseTuple(args, "OnOnnO:shapiro_window", &distances_obj, &n, &window_obj, &merged, &limit, &a_obj)) {
        return NULL;
    }
    Array distances, window, a;
    memset(&window, 0, sizeof(window));
    memset(&a, 0, sizeof(a));
    if (get_array(distances_obj, &distances, "d", "distances") < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (get_array(window_obj, &window, "d", "window") < 0 || get_array(a_obj, &a, "d", "a") < 0) {
        goto done;
    }
    if (writable(&window, "window") < 0) {
        goto done;
    }
    if (limit < 3 || n < 3 || n > distances.n || merged < 0 || merged > n) {
        PyErr_SetString(PyExc_ValueError,
                        "shapiro_window needs 3 <= n <= len(distances), 0 <= merged <= n and limit >= 3");
        goto done;
    }
    Py_ssize_t m = n < limit ? n : limit;
    if (window.n < m || a.n < m / 2) {
        PyErr_Format(PyExc_ValueError, "window needs room for %zd values and a %zd coefficients", m, m / 2);
        goto done;
    }
    const double *ds = (const double *)distances.view.buf;
    double *sorted = (double *)window.view.buf;
    Py_ssize_t count = merged < limit ? merged : limit;
    for (Py_ssize_t k = merged; k < n; k++) {
        if (count == limit) { /* the oldest value of the window leaves it */
            Py_ssize_t at = lower_bound(sorted, count, ds[k - limit]);
            memmove(sorted + at, sorted + at + 1, sizeof(double) * (size_t)(count - at - 1));
            count--;
        }
        Py_ssize_t at = lower_bound(sorted, count, ds[k]);
        memmove(sorted + at + 1, sorted + at, sizeof(double) * (size_t)(count - at));
        sorted[at] = ds[k];
        count++;
    }
    /* scipy.stats.shapiro: y = sort(x) - x[m // 2] (x in arrival order), then swilk(y, a, init=True) */
    const double *coefficients = (const double *)a.view.buf;
    const double middle = ds[n - m + m / 2];
    const double range = (sorted[m - 1] - middle) - (sorted[0] - middle);
    double w = 1.0;
    if (!(range < 1e-19)) {
        double xx = (sorted[0] - middle) / range;
        double sx = xx;
        double sa = -coefficients[0];
        Py_ssize_t j = m - 2;
        for (Py_ssize_t i = 1; i < m; i++) {
            double xi = (sorted[i] - middle) / range;
            sx += xi;
            if (i != j) {
                sa += (i < j ? -1 : 1) * coefficients[i < j ? i : j];
            }
            j--;
        }
        sa /= (double)m;
        sx /= (double)m;
        double ssa = 0.0, ssx = 0.0, sax = 0.0;
        j = m - 1;
        for (Py_ssize_t i = 0; i < m; i++) {
            double asa = i != j ? (i < j ? -1 : 1) * coefficients[i < j ? i : j] - sa : -sa;
            double xsx = (sorted[i] - middle) / range - sx;
            ssa += asa * asa;
            ssx += xsx * xsx;
            sax += asa * xsx;
            j--;
        }
        double ssassx = sqrt(ssa * ssx);
        double w1 = (ssassx - sax) * (ssassx + sax) / (ssa * ssx);
        w = 1.0 - w1;
        if (m == 3 && w < 0.75) {
            w = 0.75;
        }
    }
    result = PyFloat_FromDouble(w);
done:
    release(&distances);
    release(&window);
    release(&a);
    return result;
}

PyDoc_STRVAR(normalised_entropy_doc,
"normalised_entropy(p) -> float\n\n"
"``H(p) / log(C)`` of the probabilities ``p`` (float32 or float64, ``C >= 2`` values): values that are not > 0\n"
"(negatives, NaN) count as 0, the rest are renormalised, and nothing left means uniform. The terms are those of\n"
"detection._normalised_entropy, added in the same order, so the value is the same to the bit.");

static PyObject *normalised_entropy(PyObject *self, PyObject *p_obj) {
    Array p;
    if (get_array(p_obj, &p, "fd", "p") < 0) {
        return NULL;
    }
    if (p.n < 2) {
        release(&p);
        PyErr_SetString(PyExc_ValueError, "normalised_entropy needs at least 2 probabilities");
        return NULL;
    }
    const float *pf = (const float *)p.view.buf;
    const double *pd = (const double *)p.view.buf;
    int single = p.kind == 'f';
    double total = 0.0;
    for (Py_ssize_t i = 0; i < p.n; i++) {
        double v = single ? (double)pf[i] : pd[i];
        if (v > 0.0) {
            total += v;
        }
    }
    double h = 0.0;
    if (!(total > 0.0)) { /* uniform */
        double q = 1.0 / (double)p.n;
        for (Py_ssize_t i = 0; i < p.n; i++) {
            h += q * log(q);
        }
    } else {
        for (Py_ssize_t i = 0; i < p.n; i++) {
            double v = single ? (double)pf[i] : pd[i];
            if (v > 0.0) {
                double q = v / total;
                if (q > 0.0) {
                    h += q * log(q);
                }
            }
        }
    }
    release(&p);
    return PyFloat_FromDouble(-h / log((double)p.n));
}

static PyMethodDef methods[] = {
    {"edit_step", edit_step, METH_VARARGS, edit_step_doc},
    {"prada_step", prada_step, METH_VARARGS, prada_step_doc},
    {"shapiro_window", shapiro_window, METH_VARARGS, shapiro_window_doc},
    {"normalised_entropy", normalised_entropy, METH_O, normalised_entropy_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "evaluations.engine.extraction._kernels",
    "The extraction detector's per-query arithmetic in C (see detection.py).",
    -1,
    methods,
};

PyMODINIT_FUNC PyInit__kernels(void) {
    return PyModule_Create(&module);
}

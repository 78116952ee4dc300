/* IDX (MNIST / Fashion-MNIST) reader for the sub-commands; see idx.h. */
#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Read exactly len bytes or report what went wrong: gzread returns short
 * counts at end of file and -1 on a corrupt gzip stream. Reads are split so
 * that each fits gzread's unsigned length. */
static sl_err_t read_full(gzFile gz, const char *path, const char *what, void *buf, size_t len,
                          char *errstr, size_t errstr_size)
{
        size_t done = 0;

        while (done < len) {
                size_t chunk = len - done;
                int n;

                if (chunk > (1u << 30))
                        chunk = 1u << 30;
                n = gzread(gz, (char *)buf + done, (unsigned)chunk);
                if (n < 0) {
                        int zerr = 0;
                        const char *msg = gzerror(gz, &zerr);

                        sl_strfmt(errstr, errstr_size, "%s: reading %s: %s", path, what,
                                  zerr == Z_ERRNO ? strerror(errno) : msg);
                        return SL_ERR_IO;
                }
                if (n == 0) {
                        sl_strfmt(
                            errstr, errstr_size,
                            "%s: truncated: %s needs %zu bytes, the file ends after %zu of them",
                            path, what, len, done);
                        return SL_ERR_IO;
                }
                done += (size_t)n;
        }
        return SL_OK;
}

static uint32_t be32(const unsigned char *p)
{
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char *magic_kind(uint32_t magic)
{
        switch (magic) {
        case SL_IDX_MAGIC_IMAGES:
                return "an images file (uint8 [n,rows,cols])";
        case SL_IDX_MAGIC_LABELS:
                return "a labels file (uint8 [n])";
        default:
                return NULL;
        }
}

/* Opens path, checks the magic, reads the ndim big-endian dims and then
 * min(dims[0], max_count) items of item_size bytes. The whole body of a
 * file read to its end must end there: trailing bytes mean a wrong file. */
static sl_err_t read_idx(const char *path, uint32_t magic_want, int ndim, size_t max_count,
                         uint32_t *dims, uint8_t **datap, size_t *countp, char *errstr,
                         size_t errstr_size)
{
        unsigned char hdr[4 + 4 * 3];
        gzFile gz = NULL;
        uint8_t *data = NULL;
        size_t item_size = 1, count, nbytes;
        uint32_t magic;
        const char *kind;
        sl_err_t err;

        errno = 0;
        gz = gzopen(path, "rb");
        if (!gz) {
                sl_strfmt(errstr, errstr_size, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "gzopen failed");
                err = SL_ERR_IO;
                goto done;
        }
        err = read_full(gz, path, "the IDX header", hdr, 4 + 4 * (size_t)ndim, errstr, errstr_size);
        if (err)
                goto done;
        magic = be32(hdr);
        if (magic != magic_want) {
                kind = magic_kind(magic);
                sl_strfmt(errstr, errstr_size, "%s: IDX magic is 0x%08x (%s), expected 0x%08x (%s)",
                          path, magic, kind ? kind : "not an IDX uint8 file of that rank",
                          magic_want, magic_kind(magic_want));
                err = SL_ERR_INVALID_ARG;
                goto done;
        }
        for (int d = 0; d < ndim; d++) {
                dims[d] = be32(hdr + 4 + 4 * d);
                if (d > 0 && (dims[d] == 0 || dims[d] > SL_IDX_DIM_MAX)) {
                        sl_strfmt(errstr, errstr_size, "%s: dimension %d is %u, expected 1..%d",
                                  path, d, (unsigned)dims[d], SL_IDX_DIM_MAX);
                        err = SL_ERR_INVALID_ARG;
                        goto done;
                }
                if (d > 0)
                        item_size *= dims[d];
        }
        count = dims[0];
        if (max_count && max_count < count)
                count = max_count;
        if (count == 0) {
                sl_strfmt(errstr, errstr_size, "%s: the file holds no items", path);
                err = SL_ERR_INVALID_ARG;
                goto done;
        }
        nbytes = count * item_size; /* <= 2^32 * 4096^2, fits size_t on 64-bit */
        if (nbytes / item_size != count) {
                sl_strfmt(errstr, errstr_size, "%s: %zu items of %zu bytes is too large", path,
                          count, item_size);
                err = SL_ERR_INVALID_ARG;
                goto done;
        }
        data = malloc(nbytes);
        if (!data) {
                sl_strfmt(errstr, errstr_size, "%s: cannot allocate %zu bytes", path, nbytes);
                err = SL_ERR_NOMEM;
                goto done;
        }
        err = read_full(gz, path, "the IDX body", data, nbytes, errstr, errstr_size);
        if (err)
                goto done;
        if (count == dims[0]) {
                unsigned char extra;
                int n = gzread(gz, &extra, 1);

                if (n != 0) {
                        sl_strfmt(errstr, errstr_size,
                                  n > 0 ? "%s: bytes follow the %zu declared items"
                                        : "%s: gzip error after the %zu declared items",
                                  path, count);
                        err = n > 0 ? SL_ERR_INVALID_ARG : SL_ERR_IO;
                        goto done;
                }
        }
        *datap = data;
        *countp = count;
        data = NULL;
done:
        free(data);
        if (gz)
                gzclose(gz);
        return err;
}

sl_err_t sl_idx_read_images(const char *path, size_t max_count, sl_idx_images_t *img, char *errstr,
                            size_t errstr_size)
{
        uint32_t dims[3];
        sl_err_t err;

        memset(img, 0, sizeof(*img));
        err = read_idx(path, SL_IDX_MAGIC_IMAGES, 3, max_count, dims, &img->pixels, &img->count,
                       errstr, errstr_size);
        if (err)
                return err;
        img->count_file = dims[0];
        img->rows = dims[1];
        img->cols = dims[2];
        return SL_OK;
}

sl_err_t sl_idx_read_labels(const char *path, size_t max_count, sl_idx_labels_t *lab, char *errstr,
                            size_t errstr_size)
{
        uint32_t dims[1];
        sl_err_t err;

        memset(lab, 0, sizeof(*lab));
        err = read_idx(path, SL_IDX_MAGIC_LABELS, 1, max_count, dims, &lab->labels, &lab->count,
                       errstr, errstr_size);
        if (err)
                return err;
        lab->count_file = dims[0];
        return SL_OK;
}

void sl_idx_images_cleanup(sl_idx_images_t *img)
{
        free(img->pixels);
        memset(img, 0, sizeof(*img));
}

void sl_idx_labels_cleanup(sl_idx_labels_t *lab)
{
        free(lab->labels);
        memset(lab, 0, sizeof(*lab));
}

sl_err_t sl_idx_read_pair(const char *images_path, const char *labels_path, size_t max_count,
                          sl_idx_images_t *img, sl_idx_labels_t *lab, char *errstr,
                          size_t errstr_size)
{
        sl_err_t err;

        memset(lab, 0, sizeof(*lab));
        err = sl_idx_read_images(images_path, max_count, img, errstr, errstr_size);
        if (err)
                goto done;
        if (!labels_path || !*labels_path)
                goto done;
        err = sl_idx_read_labels(labels_path, max_count, lab, errstr, errstr_size);
        if (err)
                goto done;
        if (lab->count_file != img->count_file) {
                sl_strfmt(errstr, errstr_size, "%s: %zu labels, but %s holds %zu images",
                          labels_path, lab->count_file, images_path, img->count_file);
                err = SL_ERR_INVALID_ARG;
        }
done:
        if (err) {
                sl_idx_images_cleanup(img);
                sl_idx_labels_cleanup(lab);
        }
        return err;
}

void sl_idx_image_to_f32(const sl_idx_images_t *img, size_t i, float *out)
{
        size_t n = img->rows * img->cols;
        const uint8_t *src = img->pixels + i * n;

        SL_ASSERT(i < img->count);
        for (size_t k = 0; k < n; k++)
                out[k] = (float)src[k] / 255.0f;
}

sl_err_t sl_idx_names_read(const char *path, char ***namesp, size_t *np, char *errstr,
                           size_t errstr_size)
{
        char *buf = NULL, **names = NULL, *line, *next;
        size_t len = 0, n = 0, cap = 0;
        sl_err_t err;

        err = sl_file_read(path, &buf, &len, errstr, errstr_size);
        if (err)
                goto done;
        for (line = buf; line < buf + len; line = next) {
                char *end = memchr(line, '\n', (size_t)(buf + len - line));
                size_t l;

                next = end ? end + 1 : buf + len;
                l = (size_t)((end ? end : buf + len) - line);
                while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
                        l--;
                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 16;
                        char **tmp = realloc(names, ncap * sizeof(*names));

                        if (!tmp) {
                                err = SL_ERR_NOMEM;
                                goto done;
                        }
                        names = tmp;
                        cap = ncap;
                }
                names[n] = strndup(line, l);
                if (!names[n]) {
                        err = SL_ERR_NOMEM;
                        goto done;
                }
                n++;
        }
        /* A last empty line (a file ending "\n\n") names no class. */
        while (n > 0 && !*names[n - 1])
                free(names[--n]);
        *namesp = names;
        *np = n;
        names = NULL;
        n = 0;
done:
        if (err == SL_ERR_NOMEM)
                sl_strfmt(errstr, errstr_size, "%s: out of memory", path);
        sl_idx_names_free(names, n);
        free(buf);
        return err;
}

void sl_idx_names_free(char **names, size_t n)
{
        if (!names)
                return;
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
}

/**
 * @file idx.h
 * @brief Reader of IDX files, the format of MNIST and Fashion-MNIST, for the
 *        `produce` and `predict` sub-commands.
 *
 * An IDX file (plain or gzip'd; zlib reads both) is a big-endian header and
 * a dense row-major body:
 * @code
 * magic   4 bytes: 0x00 0x00 <type> <ndim>   (type 0x08 = unsigned byte)
 * dims    ndim x 4-byte big-endian sizes
 * data    product(dims) elements
 * @endcode
 * Images are magic 0x00000803 (uint8 [n, rows, cols]); labels are
 * 0x00000801 (uint8 [n]).
 * @sa Y. LeCun et al., "THE MNIST DATABASE of handwritten digits", section
 *     "FILE FORMATS FOR THE MNIST DATABASE".
 *
 * Errors name the file and what is wrong (magic, a dimension, a short body).
 */
#ifndef SL_CLI_IDX_H
#define SL_CLI_IDX_H

#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/** @brief Default data set of the sub-commands (Debian's Fashion-MNIST t10k split). */
#define SL_IDX_DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
#define SL_IDX_DEFAULT_LABELS "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"

#define SL_IDX_MAGIC_IMAGES 0x00000803u
#define SL_IDX_MAGIC_LABELS 0x00000801u

/** @brief Largest rows or cols accepted (a guard against corrupt headers). */
#define SL_IDX_DIM_MAX 4096

/** @brief Images of an IDX3 file: \p count images of rows x cols uint8 pixels. */
typedef struct sl_idx_images_s {
        size_t count;      /**< images read (at most the max_count asked for) */
        size_t count_file; /**< images the file declares */
        size_t rows, cols;
        uint8_t *pixels; /**< count * rows * cols bytes, row-major; owned */
} sl_idx_images_t;

/** @brief Labels of an IDX1 file: \p count uint8 class indices. */
typedef struct sl_idx_labels_s {
        size_t count;
        size_t count_file;
        uint8_t *labels; /**< owned */
} sl_idx_labels_t;

/**
 * @brief Read up to \p max_count images (0 = all) from \p path.
 *
 * Checks the magic, that rows and cols are in [1, SL_IDX_DIM_MAX], that the
 * body holds every image read and, when the whole file is read, that no
 * bytes follow it.
 * @returns SL_OK; SL_ERR_IO (cannot open, gzip error, truncated body);
 *          SL_ERR_INVALID_ARG (wrong magic or dimension, trailing bytes);
 *          SL_ERR_NOMEM. errstr starts with \p path.
 * @remark On success \p img owns its pixels (sl_idx_images_cleanup()).
 */
sl_err_t sl_idx_read_images(const char *path, size_t max_count, sl_idx_images_t *img, char *errstr,
                            size_t errstr_size);

/** @brief Read up to \p max_count labels (0 = all), as sl_idx_read_images(). */
sl_err_t sl_idx_read_labels(const char *path, size_t max_count, sl_idx_labels_t *lab, char *errstr,
                            size_t errstr_size);

/** @brief Free what an images struct owns and zero it. Accepts a zeroed struct. */
void sl_idx_images_cleanup(sl_idx_images_t *img);
/** @brief Free what a labels struct owns and zero it. Accepts a zeroed struct. */
void sl_idx_labels_cleanup(sl_idx_labels_t *lab);

/**
 * @brief Read an images file and, if \p labels_path is neither NULL nor "",
 *        its labels file; checks both files declare the same count.
 *
 * On success \p lab is zeroed when no labels file is given.
 * @returns as sl_idx_read_images(); on error nothing is left allocated.
 */
sl_err_t sl_idx_read_pair(const char *images_path, const char *labels_path, size_t max_count,
                          sl_idx_images_t *img, sl_idx_labels_t *lab, char *errstr,
                          size_t errstr_size);

/**
 * @brief Convert image \p i to float32 pixels in [0, 1] (value / 255).
 * @param out  rows * cols floats.
 */
void sl_idx_image_to_f32(const sl_idx_images_t *img, size_t i, float *out);

/**
 * @brief Read a labels.txt file: one class name per line (trailing CR/LF
 *        and blanks at the end of a line removed; empty lines kept so that
 *        line i is class i).
 * @returns SL_OK with *namesp (n strings) owned by the caller
 *          (sl_idx_names_free()); SL_ERR_IO (errstr names the file).
 */
sl_err_t sl_idx_names_read(const char *path, char ***namesp, size_t *np, char *errstr,
                           size_t errstr_size);
void sl_idx_names_free(char **names, size_t n);

#endif /* SL_CLI_IDX_H */

/* Model repository: config.cfg errors name file and line; top-k; routing to versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "repo/repo.h"

static char root[256];

static void write_file(const char *path, const char *text)
{
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs(text, fp);
        fclose(fp);
}

static int make_root(void **state)
{
        (void)state;
        snprintf(root, sizeof(root), "/tmp/sl_repo_XXXXXX");
        assert_non_null(mkdtemp(root));
        return 0;
}

static int remove_root(void **state)
{
        char cmd[300];
        (void)state;
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        return system(cmd);
}

/* A model folder with the shipped Fashion-MNIST model copied as version N. */
static void add_model(const char *name, const char *version, const char *config)
{
        char path[512], cmd[2048];
        snprintf(path, sizeof(path), "%s/%s/%s", root, name, version);
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s/models/fashion_cnn/1/model.onnx' '%s/'",
                 path, SL_SOURCE_DIR, path);
        assert_int_equal(system(cmd), 0);
        snprintf(path, sizeof(path), "%s/%s/config.cfg", root, name);
        write_file(path, config);
}

static void test_config_error_names_file_and_line(void **state)
{
        char errstr[512], path[512];
        sl_repo_t *repo = NULL;
        (void)state;
        add_model("m", "1", "max_batch_size = 8;\n\nmax_batch_sise = 4;\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        snprintf(path, sizeof(path), "%s/m/config.cfg:3: unknown setting 'max_batch_sise'", root);
        assert_non_null(strstr(errstr, path));
        assert_null(repo);

        add_model("m", "1", "max_batch_size = \"big\";\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        assert_non_null(strstr(errstr, "config.cfg:1: max_batch_size: expected integer"));

        add_model("m", "1", "output_kind = \"scores\";\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        assert_non_null(strstr(errstr, "config.cfg:1: output_kind"));

        add_model("m", "1", "top_k = 3\nlabels_file = ;\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        assert_non_null(strstr(errstr, "syntax error"));
}

static void test_versions_and_labels(void **state)
{
        char errstr[512], path[512];
        sl_repo_t *repo = NULL;
        const sl_repo_model_t *m;
        (void)state;
        add_model("m", "2", "top_k = 2;\noutput_kind = \"logits\";\nversion_policy = \"all\";\n");
        add_model("m", "10", "top_k = 2;\noutput_kind = \"logits\";\nversion_policy = \"all\";\n");
        snprintf(path, sizeof(path), "%s/m/labels.txt", root);
        write_file(path, "zero\n\ntwo\n3\n4\n5\n6\n7\n8\nnine\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_OK);
        m = sl_repo_find(repo, "m", NULL);
        assert_non_null(m);
        assert_string_equal(m->version, "10"); /* numeric, not lexical, order */
        assert_string_equal(sl_repo_find(repo, "m", "2")->version, "2");
        assert_null(sl_repo_find(repo, "m", "3"));
        assert_null(sl_repo_find(repo, "other", NULL));
        assert_int_equal(m->n_labels, 10); /* an empty line still names class 1 */
        assert_string_equal(m->labels[2], "two");
        assert_int_equal(m->top_k, 2);
        sl_repo_destroy(repo);
}

/* Version policies (Triton's): latest N (default 1), all, specific. */
static void test_version_policy(void **state)
{
        char errstr[512];
        sl_repo_t *repo = NULL;
        (void)state;
        add_model("m", "1", "");
        add_model("m", "2", "");
        add_model("m", "3", "");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(sl_repo_count(repo), 1);
        assert_string_equal(sl_repo_get(repo, 0)->version, "3");
        sl_repo_destroy(repo);

        add_model("m", "1", "num_versions = 2;\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(sl_repo_count(repo), 2);
        assert_string_equal(sl_repo_get(repo, 0)->version, "2");
        sl_repo_destroy(repo);

        add_model("m", "1", "version_policy = \"specific\";\nversions = [1, 3, 9];\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(sl_repo_count(repo), 2);
        assert_string_equal(sl_repo_get(repo, 0)->version, "1");
        assert_string_equal(sl_repo_get(repo, 1)->version, "3");
        sl_repo_destroy(repo);

        add_model("m", "1", "version_policy = \"specific\";\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        assert_non_null(strstr(errstr, "needs versions"));
}

/* Live reload: a new version is planned and swapped in; a broken one is remembered. */
static void test_plan_reload(void **state)
{
        char errstr[512], path[1024];
        sl_repo_t *repo = NULL;
        sl_repo_plan_t plan;
        sl_repo_model_t *m = NULL;
        (void)state;
        add_model("m", "1", "");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(sl_repo_plan(repo, &plan, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(plan.n_add + plan.n_remove, 0); /* nothing changed */
        sl_repo_plan_cleanup(&plan);

        add_model("m", "2", "");
        snprintf(path, sizeof(path), "mkdir -p %s/m/3 && echo broken > %s/m/3/model.onnx", root,
                 root);
        assert_int_equal(system(path), 0);
        assert_int_equal(sl_repo_plan(repo, &plan, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(plan.n_add, 1); /* latest 1: version 3 */
        assert_int_equal(plan.add[0].version, 3);
        assert_int_equal(plan.n_remove, 1);
        assert_int_equal(sl_repo_load(repo, "m", 3, &m, errstr, sizeof(errstr)), SL_ERR_MODEL);
        assert_non_null(strstr(errstr, "m/3/model.onnx"));
        sl_repo_plan_cleanup(&plan);

        /* 3 failed: the plan now wants 2 instead, and drops 1. */
        assert_int_equal(sl_repo_plan(repo, &plan, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(plan.n_add, 1);
        assert_int_equal(plan.add[0].version, 2);
        assert_int_equal(plan.n_remove, 1);
        assert_string_equal(plan.remove[0]->version, "1");
        assert_int_equal(sl_repo_load(repo, "m", 2, &m, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(sl_repo_insert(repo, m), SL_OK);
        assert_string_equal(sl_repo_find(repo, "m", NULL)->version, "2");
        {
                sl_repo_model_t *old = (sl_repo_model_t *)plan.remove[0];
                sl_repo_detach(repo, old);
                sl_repo_model_destroy(old);
        }
        sl_repo_plan_cleanup(&plan);
        assert_int_equal(sl_repo_count(repo), 1);
        assert_true(sl_repo_bytes(repo) > 1000000);

        /* The model folder removed: its versions go. */
        snprintf(path, sizeof(path), "rm -rf %s/m", root);
        assert_int_equal(system(path), 0);
        assert_int_equal(sl_repo_plan(repo, &plan, errstr, sizeof(errstr)), SL_OK);
        assert_int_equal(plan.n_add, 0);
        assert_int_equal(plan.n_remove, 1);
        sl_repo_plan_cleanup(&plan);
        sl_repo_destroy(repo);
}

/* A labels file must name as many classes as the model outputs. */
static void test_labels_count_checked(void **state)
{
        char errstr[512], path[512];
        sl_repo_t *repo = NULL;
        (void)state;
        add_model("m", "1", "top_k = 2;\n");
        snprintf(path, sizeof(path), "%s/m/labels.txt", root);
        write_file(path, "zero\none\ntwo\n");
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_CONFIG);
        assert_non_null(strstr(errstr, "m/labels.txt: 3 labels, but output 'probabilities'"));
        assert_non_null(strstr(errstr, "has 10 classes"));
}

/* A model that loads but cannot run fails at start-up (warm-up), naming the node. */
static void test_warm_up_catches_unrunnable_model(void **state)
{
        char errstr[512], path[512], *buf = NULL;
        size_t len = 0;
        sl_repo_t *repo = NULL;
        FILE *fp;
        (void)state;
        add_model("m", "1", "top_k = 2;\n");
        snprintf(path, sizeof(path), "%s/m/1/model.onnx", root);
        assert_int_equal(sl_file_read(path, &buf, &len, NULL, 0), SL_OK);
        /* Every Gemm becomes a Conv: valid protobuf, known op, impossible shapes. */
        for (size_t i = 0; i + 4 <= len; i++)
                if (!memcmp(buf + i, "Gemm", 4))
                        memcpy(buf + i, "Conv", 4);
        assert_non_null(fp = fopen(path, "wb"));
        assert_int_equal(fwrite(buf, 1, len, fp), len);
        fclose(fp);
        free(buf);
        assert_int_equal(sl_repo_open(root, &repo, errstr, sizeof(errstr)), SL_ERR_MODEL);
        assert_non_null(strstr(errstr, "m/1/model.onnx: warm-up run with one all-zero row failed"));
        assert_non_null(strstr(errstr, "/fc1/Conv"));
}

static void test_top_k(void **state)
{
        sl_repo_model_t m = {0};
        float scores[5] = {0.1f, 0.4f, 0.05f, 0.4f, 0.05f};
        float logits[3] = {1.0f, 3.0f, 2.0f};
        int32_t idx[5];
        float prob[5];
        (void)state;
        m.output_kind = SL_OUTPUT_PROBABILITIES;
        assert_int_equal(sl_repo_top_k(&m, scores, 5, 3, idx, prob), 3);
        assert_int_equal(idx[0], 1); /* tie: lower index first */
        assert_int_equal(idx[1], 3);
        assert_int_equal(idx[2], 0);
        assert_int_equal(sl_repo_top_k(&m, scores, 5, 9, idx, prob), 5);

        m.output_kind = SL_OUTPUT_LOGITS;
        assert_int_equal(sl_repo_top_k(&m, logits, 3, 2, idx, prob), 2);
        assert_int_equal(idx[0], 1);
        assert_int_equal(idx[1], 2);
        /* softmax([1,3,2]) = [0.0900, 0.6652, 0.2447] */
        assert_float_equal(prob[0], 0.66524096f, 1e-6);
        assert_float_equal(prob[1], 0.24472847f, 1e-6);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_config_error_names_file_and_line, make_root,
                                            remove_root),
            cmocka_unit_test_setup_teardown(test_versions_and_labels, make_root, remove_root),
            cmocka_unit_test_setup_teardown(test_labels_count_checked, make_root, remove_root),
            cmocka_unit_test_setup_teardown(test_version_policy, make_root, remove_root),
            cmocka_unit_test_setup_teardown(test_plan_reload, make_root, remove_root),
            cmocka_unit_test_setup_teardown(test_warm_up_catches_unrunnable_model, make_root,
                                            remove_root),
            cmocka_unit_test(test_top_k),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Option parsing helpers shared by produce, collect and predict. */
#include "args.h"

#include <stdio.h>
#include <string.h>

#include "util/util.h"

int sl_cli_int(const char *cmd, const char *opt, const char *s, int64_t min, int64_t max,
               int64_t *out)
{
        int64_t v;
        if (sl_parse_i64(s, &v) || v < min || v > max) {
                fprintf(stderr, "%s: %s: '%s' is not an integer in %lld..%lld\n", cmd, opt, s,
                        (long long)min, (long long)max);
                return -1;
        }
        *out = v;
        return 0;
}

int sl_cli_kafka_props(rd_kafka_conf_t *conf, char *const *props, size_t n, char *errstr,
                       size_t errstr_size)
{
        for (size_t i = 0; i < n; i++) {
                char name[256];
                const char *eq = strchr(props[i], '=');
                size_t nl = eq ? (size_t)(eq - props[i]) : strlen(props[i]);

                if (!eq || nl >= sizeof(name)) {
                        sl_strfmt(errstr, errstr_size,
                                  "-X %s: expected name=value with a short name", props[i]);
                        return -1;
                }
                memcpy(name, props[i], nl);
                name[nl] = '\0';
                if (rd_kafka_conf_set(conf, name, eq + 1, errstr, errstr_size) != RD_KAFKA_CONF_OK)
                        return -1;
        }
        return 0;
}

/*
 * The scalar values of fngate's configuration: durations, sizes, integers,
 * booleans, and the names functions and environment variables may have.
 * Numbers are read by hand, digits only and with overflow caught, because
 * strtol would take signs, spaces and "0x" an operator never meant as a
 * duration; and names use explicit character ranges, not the locale's, so
 * that the INI reader, `fngate dev` and the function registry agree on what
 * a function may be called whatever the environment.
 */
#include "config.h"

#include "confval.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

/* Digits only, no sign: 0 on success, -1 if not a number, -2 on overflow. */
static int confval_digits(const char **sp, int64_t *out)
{
    const char *s = *sp;
    int64_t v = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10) {
            while (isdigit((unsigned char)*s))
                s++;
            *sp = s;
            return -2;
        }
        v = v * 10 + d;
    }
    *sp = s;
    *out = v;
    return 0;
}

/* A number's unit suffixes and what each multiplies by. */
struct confval_unit {
    const char *suffix;
    int64_t mul;
};

static const struct confval_unit confval_duration_units[] = {
    {"ms", 1},
    {"", CONF_MS_PER_S}, /* a bare number is seconds */
    {"s", CONF_MS_PER_S},
    {"m", 60 * CONF_MS_PER_S},
    {"h", 3600 * CONF_MS_PER_S},
    {NULL, 0},
};

static const struct confval_unit confval_size_units[] = {
    {"", 1},
    {"K", (int64_t)1 << 10},
    {"k", (int64_t)1 << 10},
    {"M", (int64_t)1 << 20},
    {"m", (int64_t)1 << 20},
    {"G", (int64_t)1 << 30},
    {"g", (int64_t)1 << 30},
    {NULL, 0},
};

/* Digits then exactly one of UNITS' suffixes: 0, -1 when S is not such a
 * value, -2 when it overflows. */
static int confval_scaled(const char *s, const struct confval_unit *units, int64_t *out)
{
    int64_t v, mul = 0;
    int r;

    if (s == NULL)
        return -1;
    r = confval_digits(&s, &v);
    if (r == -1)
        return -1;
    for (size_t i = 0; units[i].suffix != NULL && mul == 0; i++)
        if (strcmp(s, units[i].suffix) == 0)
            mul = units[i].mul;
    if (mul == 0)
        return -1;
    if (r == -2 || v > INT64_MAX / mul)
        return -2;
    *out = v * mul;
    return 0;
}

/* Like confval_parse_duration but tells "not a duration" (-1) from overflow
 * (-2) so the message can say which. */
int confval_duration(const char *s, int64_t *ms)
{
    return confval_scaled(s, confval_duration_units, ms);
}

int confval_parse_duration(const char *s, int64_t *ms)
{
    return confval_duration(s, ms) == 0 ? 0 : -1;
}

int confval_size(const char *s, int64_t *bytes)
{
    return confval_scaled(s, confval_size_units, bytes);
}

int confval_parse_size(const char *s, int64_t *bytes)
{
    return confval_size(s, bytes) == 0 ? 0 : -1;
}

/* An optional '-' then digits; a sign is accepted only so that "-1" gets an
 * "out of range" message rather than "not an integer". */
int confval_integer(const char *s, int64_t *out)
{
    bool neg = false;
    int64_t v;
    int r;

    if (*s == '-') {
        neg = true;
        s++;
    }
    r = confval_digits(&s, &v);
    if (r == -1 || *s != '\0')
        return -1;
    if (r == -2)
        return -2;
    *out = neg ? -v : v;
    return 0;
}

/* Explicit ranges rather than islower(): names must not depend on locale. */
static bool confval_lower_or_digit(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

static bool confval_env_char(char ch, bool first)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
           (!first && ch >= '0' && ch <= '9');
}

bool confval_name_valid(const char *name)
{
    size_t i;

    if (name == NULL || !confval_lower_or_digit(name[0]))
        return false;
    for (i = 1; name[i] != '\0'; i++) {
        if (i >= CONF_NAME_MAX)
            return false;
        if (!confval_lower_or_digit(name[i]) && name[i] != '_' && name[i] != '-')
            return false;
    }
    return strcmp(name, "gateway") != 0 && strcmp(name, "defaults") != 0 &&
           strcmp(name, "limits") != 0;
}

bool confval_env_name_valid(const char *s)
{
    if (!confval_env_char(*s, true))
        return false;
    for (s++; *s != '\0'; s++)
        if (!confval_env_char(*s, false))
            return false;
    return true;
}

/* Parses on/off, yes/no, true/false, 1/0; -1 for anything else. */
int confval_bool(const char *value, bool *out)
{
    static const char *const yes[] = {"on", "yes", "true", "1"};
    static const char *const no[] = {"off", "no", "false", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
            *out = strcmp(value, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

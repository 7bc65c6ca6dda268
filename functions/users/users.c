/*
 * users: the classic serverless handler, backed by the gateway's pool.
 *   GET  /fn/users        the active users, as a JSON array
 *   GET  /fn/users/<id>   one user, or 404
 *   POST /fn/users        {"name": "...", "email": "..."} -> 201 and the new row;
 *                         400 on missing or wrong-typed fields, 409 if the email exists
 * The rows' JSON is rendered once, by the pool, and sent as it came.
 */
#include <fngate.h>

#include <stdlib.h>
#include <string.h>

#define USER_COLUMNS "id, name, email, active, created_at"

static int users_list(fn_req *req, fn_res *res)
{
    fn_rows *rows =
        fn_query(req, "SELECT " USER_COLUMNS " FROM users WHERE active = $1 ORDER BY id", "[b]", 1);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    return fn_send_rows(res, 200, rows);
}

static int users_get(fn_req *req, fn_res *res, const char *id_text)
{
    char *end;
    long long id = strtoll(id_text, &end, 10);
    fn_rows *rows;

    if (*id_text == '\0' || *end != '\0' || id <= 0 || id > 2147483647)
        return fn_error(res, 404, "no user %s", id_text);
    rows = fn_query(req, "SELECT " USER_COLUMNS " FROM users WHERE id = $1", "[I]", (json_int_t)id);
    if (!rows)
        return fn_send_db_error(res, 503, req);
    if (fn_rows_count(rows) == 0)
        return fn_error(res, 404, "no user %lld", id);
    return fn_send_row(res, 200, rows);
}

static int users_create(fn_req *req, fn_res *res)
{
    json_t *body = fn_body_json(req, res); /* owned by req */
    json_t *name, *email;
    fn_rows *rows;

    if (!body)
        return 0; /* the SDK answered 400 */
    name = json_object_get(body, "name");
    email = json_object_get(body, "email");
    if (!json_is_string(name) || json_string_length(name) == 0)
        return fn_error(res, 400, "\"name\" must be a non-empty string");
    if (!json_is_string(email) || !strchr(json_string_value(email), '@'))
        return fn_error(res, 400, "\"email\" must be a string containing '@'");
    rows = fn_query(req, "INSERT INTO users (name, email) VALUES ($1, $2) RETURNING " USER_COLUMNS,
                    "[OO]", name, email); /* O: json_pack takes its own references */
    if (!rows) {
        if (strcmp(fn_db_error(req)->sqlstate, "23505") == 0)
            return fn_error(res, 409, "a user with email %s already exists",
                            json_string_value(email));
        return fn_send_db_error(res, 503, req);
    }
    return fn_send_row(res, 201, rows);
}

static int users(fn_req *req, fn_res *res)
{
    const char *path = fn_path(req);
    const char *method = fn_method(req);

    if (strcmp(method, "GET") == 0 && (path[0] == '\0' || strcmp(path, "/") == 0))
        return users_list(req, res);
    if (strcmp(method, "GET") == 0)
        return users_get(req, res, path + 1);
    if (strcmp(method, "POST") == 0 && (path[0] == '\0' || strcmp(path, "/") == 0))
        return users_create(req, res);
    fn_set_header(res, "Allow", "GET, POST");
    return fn_error(res, 405, "%s %s is not supported", method, path);
}

FN_MAIN(users)

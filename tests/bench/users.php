<?php
// The php-fpm side of tests/bench/bench_db.sh: users as most PHP code would
// write it, the same SQL as functions/users/users.c.
//
//   GET .../users        the active users, json_encode(fetchAll(PDO::FETCH_ASSOC))
//   GET .../users/<id>   one user as an object, or 404
//
// The path after ".../users" comes in PATH_INFO.  The pool's environment says
// where the database is (bench_db.sh writes it into php-fpm.conf):
//   BENCH_PG_DSN       a PDO pgsql DSN (application_name=php or phpb inside)
//   BENCH_PG_EMULATE   1: PDO::ATTR_EMULATE_PREPARES (PgBouncer < 1.21 in
//                      transaction mode cannot keep named prepared statements)
// The connection is persistent (PDO::ATTR_PERSISTENT): one per worker, kept
// across requests.

const USER_COLUMNS = 'id, name, email, active, created_at';

function fail(int $status, string $msg): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode(['error' => $msg]);
}

try {
    $pdo = new PDO(getenv('BENCH_PG_DSN'), null, null, [
        PDO::ATTR_PERSISTENT => true,
        PDO::ATTR_ERRMODE => PDO::ERRMODE_EXCEPTION,
        PDO::ATTR_EMULATE_PREPARES => getenv('BENCH_PG_EMULATE') === '1',
    ]);
    $path = $_SERVER['PATH_INFO'] ?? '';
    if ($_SERVER['REQUEST_METHOD'] !== 'GET') {
        fail(405, 'only GET');
    } elseif ($path === '' || $path === '/') {
        $st = $pdo->prepare('SELECT ' . USER_COLUMNS . ' FROM users WHERE active = ? ORDER BY id');
        $st->bindValue(1, true, PDO::PARAM_BOOL);
        $st->execute();
        header('Content-Type: application/json');
        echo json_encode($st->fetchAll(PDO::FETCH_ASSOC));
    } else {
        $id = substr($path, 1);
        if (!ctype_digit($id) || (int)$id <= 0 || (int)$id > 2147483647) {
            fail(404, 'no such user');
        } else {
            $st = $pdo->prepare('SELECT ' . USER_COLUMNS . ' FROM users WHERE id = ?');
            $st->bindValue(1, (int)$id, PDO::PARAM_INT);
            $st->execute();
            $row = $st->fetch(PDO::FETCH_ASSOC);
            if ($row === false) {
                fail(404, 'no such user');
            } else {
                header('Content-Type: application/json');
                echo json_encode($row);
            }
        }
    }
} catch (PDOException $e) {
    fail(503, $e->getMessage());
}

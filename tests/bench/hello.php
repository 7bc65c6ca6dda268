<?php
// The php-fpm side of tests/bench/bench_core.sh: the same {"hello":"world"}
// as fngate's hello and tests/bench/bare_hello.c.
header('Content-Type: application/json');
echo json_encode(['hello' => 'world']);

create temp table pc(a int);
copy pc from stdin;

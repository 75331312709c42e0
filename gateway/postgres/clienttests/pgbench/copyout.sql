copy (select g from generate_series(1, 3) g) to stdout;

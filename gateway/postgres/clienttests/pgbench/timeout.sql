set statement_timeout = '100ms';
select pg_sleep(5);

create temp table pb(id int primary key, name text, amount numeric, ratio float8, at timestamptz, ok bool, uid uuid);
\set id 7
\set amount 12.5
\set ratio 0.25
\set ok true
select 'alice' as name, '2026-01-02 03:04:05+00' as at, '6f1c2b9e-0c5a-4a7e-9d1e-3b2a1c0d9e8f' as uid \gset
insert into pb values (:id, :name, :amount, :ratio, :at, :ok, :uid);
select (name = 'alice' and amount = 12.5 and ratio = 0.25 and at = '2026-01-02 03:04:05+00' and ok and uid = '6f1c2b9e-0c5a-4a7e-9d1e-3b2a1c0d9e8f')::int as good, name as got_name, amount as got_amount from pb where id = :id \gset
\shell echo row :good :got_name :got_amount
\if :good != 1
\set fail 1/0
\endif
\startpipeline
insert into pb (id, name) values (:id + 1, 'pipelined');
update pb set amount = amount * 2 where id = :id;
select count(*) from pb;
\endpipeline
select count(*) as n, sum(amount) as total from pb \gset
\shell echo pipeline :n :total
\if :n != 2
\set fail 1/0
\endif
\set nrows 100000
select g as last_g from generate_series(1, :nrows) g \aset
\shell echo last_g :last_g
\if :last_g != 100000
\set fail 1/0
\endif

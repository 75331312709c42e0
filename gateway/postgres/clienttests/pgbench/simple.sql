select 1 as one, 'two' as two \gset
\shell echo simple :one :two
\if :one != 1
\set fail 1/0
\endif
select 1 as a \; select 2 as b \; select 3 as c \aset
\shell echo compound :a :b :c
create temp table ps(id int primary key, name text);
\set id 7
insert into ps values (:id, 'seven'), (:id + 1, 'eight');
update ps set name = name || '!' where id > :id;
select count(*) as n, string_agg(name, ',' order by id) as names from ps \gset
\shell echo rows :n :names
\if :n != 2
\set fail 1/0
\endif
select g as last_g from generate_series(1, 100000) g \aset
\shell echo last_g :last_g
\if :last_g != 100000
\set fail 1/0
\endif

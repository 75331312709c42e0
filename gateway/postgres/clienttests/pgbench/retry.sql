create temp sequence if not exists tries;
create temp table if not exists pt(try int);
select nextval('tries') as try \gset
begin;
insert into pt values (:try);
\if :try = 1
do $$ begin raise exception 'simulated serialization failure' using errcode = 'serialization_failure'; end $$;
\endif
commit;
select count(*) as n, max(try) as kept from pt \gset
\shell echo committed :n :kept
\if :kept != 2
\set fail 1/0
\endif

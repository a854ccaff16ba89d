-- SQL workload for tests/suites/programs.sh: tables filled by recursive CTEs, indexes,
-- aggregates and joins. Output is deterministic, so sqlite3 under LD_PRELOAD=libhakmem.so must
-- print exactly what it prints on the system allocator.
PRAGMA cache_size = -20000;
CREATE TABLE customers(id INTEGER PRIMARY KEY, name TEXT, city TEXT, joined INTEGER);
CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, amount INTEGER, note TEXT);
CREATE TABLE items(order_id INTEGER, sku TEXT, qty INTEGER);

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
INSERT INTO customers
SELECT i, 'customer-' || i, 'city-' || (i * 7919 % 97), (i * 104729) % 3650 FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
INSERT INTO orders
SELECT i, 1 + (i * 48271) % 20000, (i * 16807) % 100000, printf('%0*d', 1 + i % 200, i) FROM n;

WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 150000)
INSERT INTO items SELECT 1 + (i * 69621) % 60000, 'sku-' || (i % 1500), 1 + i % 9 FROM n;

CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX items_order ON items(order_id);
CREATE INDEX customers_city ON customers(city, joined);

SELECT count(*), sum(amount), min(amount), max(amount) FROM orders;
SELECT city, count(*), sum(joined) FROM customers GROUP BY city ORDER BY count(*) DESC, city LIMIT 5;

SELECT c.city, count(o.id), sum(o.amount), avg(length(o.note))
FROM customers c JOIN orders o ON o.customer = c.id
GROUP BY c.city ORDER BY sum(o.amount) DESC, c.city LIMIT 10;

SELECT i.sku, sum(i.qty) AS total, count(DISTINCT o.customer)
FROM items i JOIN orders o ON o.id = i.order_id
GROUP BY i.sku ORDER BY total DESC, i.sku LIMIT 10;

SELECT c.name, sum(o.amount) AS spent
FROM customers c JOIN orders o ON o.customer = c.id
WHERE c.joined BETWEEN 100 AND 900
GROUP BY c.id ORDER BY spent DESC, c.id LIMIT 5;

-- big strings and sorting on them
SELECT length(group_concat(note, ',')), count(*) FROM (SELECT note FROM orders ORDER BY note DESC);

UPDATE orders SET note = note || note WHERE id % 3 = 0;
DELETE FROM items WHERE qty > 6;
SELECT count(*), sum(length(note)) FROM orders;
SELECT count(*), sum(qty) FROM items;

-- window functions and a self join
SELECT customer, amount, rank() OVER (PARTITION BY customer ORDER BY amount DESC) AS r
FROM orders WHERE customer IN (17, 4242, 19999) ORDER BY customer, r, amount LIMIT 12;
SELECT count(*) FROM orders a JOIN orders b ON a.customer = b.customer AND a.id < b.id;

CREATE TABLE summary AS
SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer;
SELECT n, count(*) FROM summary GROUP BY n ORDER BY n;
PRAGMA integrity_check;
SELECT 'workload.sql done';

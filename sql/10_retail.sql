\set SHOW_CONTEXT never
-- The retail template: invoice lines of an online shop.  Cancellations,
-- guest sales and non-product codes are valid; real errors are rejected
-- with a code and a path; the star refreshes incrementally and a full
-- rebuild gives the same result.
\set VERBOSITY default
TRUNCATE txpipe.rejects, txpipe.batches;

SELECT txpipe.install_template('retail', 'retail_t');
SELECT txpipe.install_template('retail', 'retail_t');
SELECT string_agg(tablename, ' ' ORDER BY tablename) AS tables FROM pg_tables WHERE schemaname = 'retail_t';
SELECT route, kind, target FROM txpipe.plan('retail_t');

-- The file's columns as "txpipe load" makes of its rows, dates in its own
-- form ("12/1/2010 8:26"): a sale of three lines, a guest sale with postage
-- and a free sample (no description, price 0), the cancellation of two
-- lines, a bank charge, a bad-debt adjustment (negative price), an explicit
-- null CustomerID.  A line's identity is its content: a re-sent line, and
-- the same line as pandas' to_json writes it (InvoiceNo a number,
-- CustomerID 17850.0, "\/" escapes, the index as "Unnamed: 0"), are
-- duplicates.
SELECT * FROM txpipe.ingest('retail_t', $$
{"InvoiceNo": "536365", "StockCode": "85123A", "Description": "WHITE HANGING HEART T-LIGHT HOLDER", "Quantity": 6, "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850, "Country": "United Kingdom"}
{"InvoiceNo": "536365", "StockCode": "71053", "Description": "WHITE METAL LANTERN", "Quantity": 6, "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 3.39, "CustomerID": 17850, "Country": "United Kingdom"}
{"InvoiceNo": "536365", "StockCode": "84406B", "Description": "CREAM CUPID HEARTS COAT HANGER", "Quantity": 8, "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 2.75, "CustomerID": 17850, "Country": "United Kingdom"}
{"InvoiceNo": "536370", "StockCode": "22728", "Description": "ALARM CLOCK BAKELIKE PINK", "Quantity": 24, "InvoiceDate": "12/1/2010 8:45", "UnitPrice": 3.75, "Country": "France"}
{"InvoiceNo": "536370", "StockCode": "POST", "Description": "POSTAGE", "Quantity": 3, "InvoiceDate": "12/1/2010 8:45", "UnitPrice": 18, "Country": "France"}
{"InvoiceNo": "536370", "StockCode": "22139", "Quantity": 1, "InvoiceDate": "12/1/2010 8:45", "UnitPrice": 0, "Country": "France"}
{"InvoiceNo": "C536379", "StockCode": "85123A", "Description": "WHITE HANGING HEART T-LIGHT HOLDER", "Quantity": -6, "InvoiceDate": "12/1/2010 9:41", "UnitPrice": 2.55, "CustomerID": 17850, "Country": "United Kingdom"}
{"InvoiceNo": "C536379", "StockCode": "D", "Description": "Discount", "Quantity": -1, "InvoiceDate": "12/1/2010 9:41", "UnitPrice": 27.5, "CustomerID": 17850, "Country": "United Kingdom"}
{"InvoiceNo": "536380", "StockCode": "BANK CHARGES", "Description": "Bank Charges", "Quantity": 1, "InvoiceDate": "12/1/2010 10:00", "UnitPrice": 15, "CustomerID": 12583, "Country": "EIRE"}
{"InvoiceNo": "536380", "StockCode": "AMAZONFEE", "Description": "AMAZON FEE", "Quantity": 1, "InvoiceDate": "12/1/2010 10:00", "UnitPrice": 1.001, "CustomerID": 12583, "Country": "EIRE"}
{"InvoiceNo": "A563185", "StockCode": "B", "Description": "Adjust bad debt", "Quantity": 1, "InvoiceDate": "8/12/2011 14:50", "UnitPrice": -11062.06, "CustomerID": null, "Country": "United Kingdom"}
{"InvoiceNo": "536365", "StockCode": "71053", "Description": "WHITE METAL LANTERN", "Quantity": 6, "InvoiceDate": "12/1/2010 8:26", "UnitPrice": 3.39, "CustomerID": 17850, "Country": "United Kingdom"}
{"Unnamed: 0": 0, "InvoiceNo": 536365, "StockCode": "85123A", "Description": "WHITE HANGING HEART T-LIGHT HOLDER", "Quantity": 6, "InvoiceDate": "12\/1\/2010 8:26", "UnitPrice": 2.55, "CustomerID": 17850.0, "Country": "United Kingdom"}
$$);
SELECT i.invoice_no, i.is_cancellation, i.invoice_date, co.country, cu.customer_no,
	   p.stock_code, p.description, l.quantity, l.unit_price
  FROM retail_t.invoice_line l
  JOIN retail_t.invoice i USING (invoice_id)
  JOIN retail_t.country co USING (country_id)
  JOIN retail_t.product p USING (product_id)
  LEFT JOIN retail_t.customer cu ON cu.customer_id = i.customer_id
 ORDER BY l.line_id;
SELECT customer_no, country FROM retail_t.customer JOIN retail_t.country USING (country_id) ORDER BY 1;

-- real errors: not JSON, a missing field, wrong types, an ISO date (not the
-- file's form), an impossible date or hour, a bad invoice number (a string
-- or a number) or StockCode, an empty country, an unknown field
SELECT * FROM txpipe.ingest('retail_t', $$
{"InvoiceNo": "536366", "StockCode": "22633", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"
{"InvoiceNo": "536366", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": "6", "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 2.5, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": "1.85", "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "CustomerID": "17850", "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "2010-12-01 08:28:00", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "2/30/2011 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 24:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "X536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": ""}
{"InvoiceNo": "536366", "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom", "Channel": "web"}
{"InvoiceNo": 5363660, "StockCode": "22632", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}
$$);
SELECT error_code, error_path, message, sqlstate
  FROM txpipe.rejects WHERE pipeline = 'retail_t' ORDER BY reject_id;
-- a rejected line leaves nothing behind: no invoice
SELECT count(*) AS invoices_536366 FROM retail_t.invoice WHERE invoice_no IN ('536366', 'X536366');
SELECT * FROM txpipe.validate('retail_t', '{"InvoiceNo": "536366", "StockCode": "22633", "Quantity": 6, "InvoiceDate": "12/1/2010 8:28", "UnitPrice": 1.85, "Country": "United Kingdom"}');
SELECT pipeline, accepted, rejected, duplicates FROM txpipe.stats WHERE pipeline = 'retail_t';

-- the star: every line is a fact, guests point to customer 0, revenue is
-- quantity * unit_price (negative for cancellations)
SELECT status, rows, watermark_from, watermark_to = (SELECT max(line_id) FROM retail_t.invoice_line) AS to_max
  FROM txpipe.refresh('retail_t');
SELECT f.invoice_no, f.date_key, f.hour, c.customer_no, c.is_guest, p.stock_code, p.is_product,
	   co.country, f.quantity, f.unit_price, f.revenue, f.is_cancellation
  FROM retail_t.fact_sales f
  JOIN retail_t.dim_customer c USING (customer_key)
  JOIN retail_t.dim_product p USING (product_key)
  JOIN retail_t.dim_country co USING (country_key)
 ORDER BY f.line_id;
SELECT * FROM retail_t.revenue_by_country_month ORDER BY month, country;
SELECT * FROM retail_t.cancellations_per_day ORDER BY date;

-- more lines, one of them late (an invoice of November 2010): the second
-- refresh writes only the new lines, each in its own month
SELECT * FROM txpipe.ingest('retail_t', $$
{"InvoiceNo": "536400", "StockCode": "22632", "Description": "HAND WARMER RED POLKA DOT", "Quantity": 12, "InvoiceDate": "12/2/2010 11:15", "UnitPrice": 1.85, "CustomerID": 13047, "Country": "United Kingdom"}
{"InvoiceNo": "C536401", "StockCode": "22632", "Description": "HAND WARMER RED POLKA DOT", "Quantity": -2, "InvoiceDate": "12/2/2010 12:00", "UnitPrice": 1.85, "CustomerID": 13047, "Country": "United Kingdom"}
{"InvoiceNo": "536100", "StockCode": "M", "Description": "Manual", "Quantity": 1, "InvoiceDate": "11/30/2010 17:00", "UnitPrice": 0.85, "CustomerID": 12583, "Country": "EIRE"}
$$);
SELECT status, rows FROM txpipe.refresh('retail_t');
SELECT status, rows FROM txpipe.refresh('retail_t');
SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) AS bound
  FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
 WHERE i.inhparent = 'retail_t.fact_sales'::regclass ORDER BY 1;

-- the star's totals equal the normalized tables'
SELECT (SELECT (count(*), sum(quantity), sum(revenue), count(*) FILTER (WHERE is_cancellation))::text
		  FROM retail_t.fact_sales)
	 = (SELECT (count(*), sum(l.quantity), sum(l.quantity * l.unit_price), count(*) FILTER (WHERE i.is_cancellation))::text
		  FROM retail_t.invoice_line l JOIN retail_t.invoice i USING (invoice_id)) AS totals_equal;

-- a full rebuild gives exactly the incremental result
CREATE TEMP TABLE inc_fact AS SELECT * FROM retail_t.fact_sales;
CREATE TEMP TABLE inc_customer AS SELECT * FROM retail_t.dim_customer;
CREATE TEMP TABLE inc_product AS SELECT * FROM retail_t.dim_product;
CREATE TEMP TABLE inc_country AS SELECT * FROM retail_t.dim_country;
CREATE TEMP TABLE inc_date AS SELECT * FROM retail_t.dim_date;
SELECT status, rows, watermark_from FROM txpipe.refresh('retail_t', full => true);
SELECT
	(SELECT count(*) FROM ((TABLE inc_fact EXCEPT TABLE retail_t.fact_sales) UNION ALL (TABLE retail_t.fact_sales EXCEPT TABLE inc_fact)) x) AS fact_diff,
	(SELECT count(*) FROM ((TABLE inc_customer EXCEPT TABLE retail_t.dim_customer) UNION ALL (TABLE retail_t.dim_customer EXCEPT TABLE inc_customer)) x) AS customer_diff,
	(SELECT count(*) FROM ((TABLE inc_product EXCEPT TABLE retail_t.dim_product) UNION ALL (TABLE retail_t.dim_product EXCEPT TABLE inc_product)) x) AS product_diff,
	(SELECT count(*) FROM ((TABLE inc_country EXCEPT TABLE retail_t.dim_country) UNION ALL (TABLE retail_t.dim_country EXCEPT TABLE inc_country)) x) AS country_diff,
	(SELECT count(*) FROM ((TABLE inc_date EXCEPT TABLE retail_t.dim_date) UNION ALL (TABLE retail_t.dim_date EXCEPT TABLE inc_date)) x) AS date_diff,
	(SELECT count(*) FROM inc_fact) AS facts;

-- txpipe_reader reads the star and the views, not the normalized tables
SET ROLE txpipe_reader;
SELECT count(*) AS facts, sum(revenue) AS revenue FROM retail_t.fact_sales;
SELECT sum(cancelled_lines) AS cancelled_lines FROM retail_t.cancellations_per_day;
SELECT count(*) FROM retail_t.invoice_line;
RESET ROLE;

SELECT txpipe.drop_pipeline('retail_t');

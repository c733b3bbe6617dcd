-- The README's quick start as a script: bin/eddy shell -f sql/quickstart.sql
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM pageviews (user_id VARCHAR KEY, page VARCHAR, dwell_ms BIGINT)
  WITH (kafka_topic='pageviews', value_format='JSON', partitions=3);

INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u1', 'home', 1200);
INSERT INTO pageviews (user_id, page, dwell_ms) VALUES ('u2', 'cart', 300);

CREATE STREAM long_views AS
  SELECT user_id, UCASE(page) AS page, dwell_ms / 1000.0 AS dwell_s
  FROM pageviews WHERE dwell_ms > 1000 EMIT CHANGES;

SELECT * FROM long_views EMIT CHANGES LIMIT 1;

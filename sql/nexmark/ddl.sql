-- Nexmark's three event streams, as `eddy datagen nexmark --topic nexmark` writes them:
-- topics nexmark_person, nexmark_auction and nexmark_bid, JSON values, keyed by person id,
-- auction id and the bid's auction (KAFKA BIGINT keys). Event time is DATE_TIME (epoch ms).
-- The reference suite reads one generated source and splits it with three views; here
-- each entity is a stream of its own (as RisingWave's Kafka setup has it).
CREATE STREAM person (id BIGINT KEY, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, state VARCHAR,
    date_time BIGINT, extra VARCHAR)
  WITH (kafka_topic='nexmark_person', value_format='JSON', timestamp='date_time');

CREATE STREAM auction (id BIGINT KEY, item_name VARCHAR, description VARCHAR, initial_bid BIGINT, reserve BIGINT, date_time BIGINT,
    expires BIGINT, seller BIGINT, category BIGINT, extra VARCHAR)
  WITH (kafka_topic='nexmark_auction', value_format='JSON', timestamp='date_time');

CREATE STREAM bid (auction BIGINT KEY, bidder BIGINT, price BIGINT, channel VARCHAR, url VARCHAR, date_time BIGINT, extra VARCHAR)
  WITH (kafka_topic='nexmark_bid', value_format='JSON', timestamp='date_time');

-- Persons as a table by id, for the stream-table joins (q3).
CREATE TABLE person_table (id BIGINT PRIMARY KEY, name VARCHAR, email_address VARCHAR, credit_card VARCHAR, city VARCHAR, state VARCHAR,
    date_time BIGINT, extra VARCHAR)
  WITH (kafka_topic='nexmark_person', value_format='JSON', timestamp='date_time');

-- Auctions as a table by id, for q20.
CREATE TABLE auction_table (id BIGINT PRIMARY KEY, item_name VARCHAR, description VARCHAR, initial_bid BIGINT, reserve BIGINT,
    date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra VARCHAR)
  WITH (kafka_topic='nexmark_auction', value_format='JSON', timestamp='date_time');

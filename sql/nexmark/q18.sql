-- Nexmark q18: the last bid of each bidder on each auction.
-- Difference: "last" is by log offset (LATEST_BY_OFFSET), not by DATE_TIME; the reference
-- ranks with ROW_NUMBER() OVER, which the dialect does not have.
CREATE TABLE nexmark_q18 WITH (key_format='JSON') AS
  SELECT bidder, auction, LATEST_BY_OFFSET(price) AS price, LATEST_BY_OFFSET(channel) AS channel,
    LATEST_BY_OFFSET(url) AS url, LATEST_BY_OFFSET(date_time) AS date_time, LATEST_BY_OFFSET(extra) AS extra
  FROM bid GROUP BY bidder, auction EMIT CHANGES;

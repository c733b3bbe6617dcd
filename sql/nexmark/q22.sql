-- Nexmark q22: the directories of each bid's URL.
-- Difference: SPLIT(url, '/')[n] (1-based) for the reference's SPLIT_INDEX(url, '/', n - 1).
CREATE STREAM nexmark_q22 AS
  SELECT auction, bidder, price, channel,
    SPLIT(url, '/')[4] AS dir1, SPLIT(url, '/')[5] AS dir2, SPLIT(url, '/')[6] AS dir3
  FROM bid EMIT CHANGES;

-- A sync ties a new account or product to the one the other app already
-- holds under the same name, trimmed and in lower case
-- (`records_by_text_keys_in`). Without an index that reads every account of
-- the org for each chunk of changes. The query spells the same expression
-- (`name_key_expr` in records/read.rs).
CREATE INDEX records_name_accounts ON records (org_id, lower(trim(CAST(json_extract(fields, '$.Account_Name') AS TEXT))))
    WHERE module = 'Accounts' AND deleted_at IS NULL;
CREATE INDEX records_name_products ON records (org_id, lower(trim(CAST(json_extract(fields, '$.Product_Name') AS TEXT))))
    WHERE module = 'Products' AND deleted_at IS NULL;

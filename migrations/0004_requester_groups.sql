-- The groups the requester had when asking, including those that came from the chat
-- platform (Slack user groups, Discord roles), which the configuration alone does not know.
ALTER TABLE requests ADD COLUMN requester_groups TEXT;

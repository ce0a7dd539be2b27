"""The accountability domain: pure folds of the log and the decisions taken on them."""

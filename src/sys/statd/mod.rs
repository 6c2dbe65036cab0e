//! statd monitor records, the holding directory, sm-notify (statd-holding).

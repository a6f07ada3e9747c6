"""The queue of open leads: who must do what by when (`sla-bot leads list`, the reports page)."""

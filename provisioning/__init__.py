"""Provisioning: from a blank Raspberry Pi to a live unit (cctv-provision, the IAM policy, Ansible glue)."""

"""Signs of life of the validation pipeline's background processes, read by /healthz (hub.health)."""

from django.db import models


class ProcessHeartbeat(models.Model):
    """The last time a Celery worker or celery beat said it was alive. Each process writes its own row every
    few seconds (hub.health), so /healthz reads liveness from one query instead of pinging workers through
    the broker and waiting for their answers."""

    class Role(models.TextChoices):
        WORKER = "worker"
        BEAT = "beat"

    role = models.CharField(max_length=16, choices=Role.choices)
    # A worker's node name (`worker-1234@host`); beat's host and process id.
    name = models.CharField(max_length=255)
    # The broker the process uses, without credentials: a worker on another broker takes none of this hub's
    # validations, so it does not count as alive for it.
    broker = models.CharField(max_length=255)
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["role", "name"], name="one_heartbeat_per_process")]

    def __str__(self):
        return f"{self.role} {self.name} at {self.seen_at:%Y-%m-%d %H:%M:%S}"

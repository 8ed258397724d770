"""The losses of the training stages."""





def soft_targets(combo_ids):
    """Row i: uniform over the batch entries naming the same colour x shape as entry i."""
    same = (combo_ids[:, None] == combo_ids[None, :]).float()
    return same / same.sum(dim=1, keepdim=True)


def symmetric_contrastive(logits, combo_ids):
    """CLIP's loss both ways, with same colour x shape pairs as shared positives."""
    import torch.nn.functional as F

    targets = soft_targets(combo_ids)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2


def supervised_contrastive(embeddings, labels, temperature: float):
    """Pull texts of the same intent together, push the others away (Khosla et al. 2020)."""
    import torch

    logits = embeddings @ embeddings.T / temperature
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    logits = logits.masked_fill(eye, -1e9)
    positives = (labels[:, None] == labels[None, :]) & ~eye
    log_probability = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    per_row = (log_probability * positives).sum(1) / positives.sum(1).clamp(min=1)
    return -per_row.mean()


def intent_decision_loss(phrase_features, labels, prototype_features, prototype_intents,
                          min_similarity: float, temperature: float = 0.05):
    """Train the policy's own rule: a command's intent is the one whose best prototype
    phrasing is most similar, and that similarity must clear the policy's threshold.
    Cross-entropy over the per-intent best similarities, plus a hinge on the right intent's.
    """
    import torch
    import torch.nn.functional as F

    similarity = phrase_features @ prototype_features.T  # (N, P)
    intents = int(prototype_intents.max()) + 1
    best = torch.stack([similarity[:, prototype_intents == i].max(1).values
                        for i in range(intents)], dim=1)  # (N, intents)
    ranking = F.cross_entropy(best / temperature, labels)
    right = best.gather(1, labels[:, None])[:, 0]
    threshold = F.relu(min_similarity + 0.1 - right).mean()
    return ranking + threshold

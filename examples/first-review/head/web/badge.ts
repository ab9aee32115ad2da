export interface Order {
  id: number;
  status: string;
  note?: string;
}

export function statusLabel(order: Order): string {
  return order.status.toUpperCase();
}

async function recordView(orderId: number): Promise<void> {
  await fetch(`/api/orders/${orderId}/views`, { method: "POST" });
}

export function renderBadge(el: HTMLElement, order: Order): void {
  el.innerHTML = `<span class="badge">${statusLabel(order)}</span><em>${order.note}</em>`;
  recordView(order.id);
}

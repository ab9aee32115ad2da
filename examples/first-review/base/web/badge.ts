export interface Order {
  id: number;
  status: string;
  note?: string;
}

export function statusLabel(order: Order): string {
  return order.status.toUpperCase();
}

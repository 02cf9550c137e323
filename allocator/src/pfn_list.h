// Operations on pfn_list: doubly linked lists threaded through struct page by pfn.
// Worked example: pages 8 and 40 on one list: head=8, page[8].lru_next=40, page[40].lru_prev=8,
// page[40].lru_next=PFN_NIL, tail=40.
//
// Each operation touch()es every struct page it writes (physmem.h): the page it links or unlinks
// and the neighbours whose links it changes. A restore to the boot image copies those back.
#pragma once

#include "mmzone.h"
#include "physmem.h"

namespace kmm {

inline void pfn_list_add(PhysMem& mem, pfn_list& l, uint32_t pfn, bool to_tail = false) {
  struct page* map = mem.mem_map;
  struct page& p = map[pfn];
  mem.touch(pfn);
  if (l.head == PFN_NIL) {
    p.lru_next = p.lru_prev = PFN_NIL;
    l.head = l.tail = pfn;
  } else if (to_tail) {
    p.lru_prev = l.tail;
    p.lru_next = PFN_NIL;
    map[l.tail].lru_next = pfn;
    mem.touch(l.tail);
    l.tail = pfn;
  } else {
    p.lru_next = l.head;
    p.lru_prev = PFN_NIL;
    map[l.head].lru_prev = pfn;
    mem.touch(l.head);
    l.head = pfn;
  }
}

inline void pfn_list_del(PhysMem& mem, pfn_list& l, uint32_t pfn) {
  struct page* map = mem.mem_map;
  struct page& p = map[pfn];
  mem.touch(pfn);
  if (p.lru_prev == PFN_NIL) {
    l.head = p.lru_next;
  } else {
    map[p.lru_prev].lru_next = p.lru_next;
    mem.touch(p.lru_prev);
  }
  if (p.lru_next == PFN_NIL) {
    l.tail = p.lru_prev;
  } else {
    map[p.lru_next].lru_prev = p.lru_prev;
    mem.touch(p.lru_next);
  }
  p.lru_next = p.lru_prev = 0;
}

} // namespace kmm
